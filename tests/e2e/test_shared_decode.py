"""The rungs after the first wave come from one ffmpeg in one pod, for real: a 720p clip's
360p, 480p, 720p and storyboard are made by the 360p TranscodeJob's Job, each stored under
its own prefix, and the asset plays through HLS and DASH with every rung on one keyframe
grid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import m3u8
import pytest
from kubernetes.client.exceptions import ApiException

from mediaplane.core import keys, names
from tests.e2e.test_pipeline import download_prefix, variants_by_name
from tests.support.assets import Assets
from tests.support.media import Media, decode_all, ffprobe, video_clip
from tests.support.wait import eventually

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from mediaplane.devcluster.cluster import DevCluster

SHARED = ("360p", "480p", "720p", "storyboard")


def keyframe_times(playlist: Path) -> list[float]:
    """The presentation times of the rendition's keyframes."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey",
         "-show_entries", "frame=pts_time", "-of", "json", str(playlist)],
        check=True, capture_output=True, text=True, timeout=120).stdout
    return [round(float(f["pts_time"]), 2) for f in json.loads(out)["frames"]]


def test_the_rungs_after_the_first_wave_share_one_decode(
        tenant: str, assets: Assets, cluster: DevCluster, media_dir: Path, s3: S3Client,
        bucket: str, tmp_path: Path) -> None:
    source = video_clip(media_dir, seconds=10, width=1280, height=720, channels=2)
    name = assets.upload(tenant, source)["metadata"]["name"]
    body = assets.wait_phase(tenant, name, "ready", timeout=300, complete=True)
    assert body["status"]["variantSummary"] == "7/7"
    variants = variants_by_name(body)
    assert {v["state"] for v in variants.values()} == {"succeeded"}

    leader = names.child_name(name, "360p")
    tjs = {t["metadata"]["name"]: t for t in assets.transcode_jobs(tenant, name)}
    assert [v["name"] for v in tjs[leader]["spec"]["alsoEncodes"]] == list(SHARED[1:])
    for rung in SHARED[1:]:
        follower = tjs[names.child_name(name, rung)]
        assert follower["spec"]["encodedBy"] == leader
        assert follower["status"]["jobName"] == leader
        assert follower["status"]["phase"] == "Succeeded"
    jobs = {j.metadata.name: j for j in assets.jobs(tenant, name)}
    # Its stereo AAC is copied, and its 240p encoded, by the probe's pod
    # (`ladder.probe_audio`, `ladder.rung_beside_probe`): no audio Job, no 240p Job.
    assert sorted(n.rsplit("-", 1)[-1] for n in jobs) == ["360p", "poster", "probe"]
    audio, lowest, probe = (tjs[names.child_name(name, v)] for v in ("audio", "240p", "probe"))
    for made in (audio, lowest):
        assert made["spec"]["encodedBy"] == probe["metadata"]["name"]
        assert made["status"]["phase"] == "Succeeded"
    assert audio["spec"]["variant"]["audioCopy"] is True
    assert variants["audio"]["codecs"] == "mp4a.40.2"
    owners = jobs[leader].metadata.owner_references
    assert [(o.name, o.controller) for o in owners] == [
        (names.child_name(name, rung), rung == "360p") for rung in SHARED]

    prefix = keys.asset_prefix(tenant, names.asset_id_from_name(name))
    download_prefix(s3, bucket, prefix, tmp_path)
    master = m3u8.load(str(tmp_path / "master.m3u8"))
    assert [p.stream_info.resolution for p in master.playlists] == [
        (426, 240), (640, 360), (854, 480), (1280, 720)]
    decode_all(str(tmp_path / "master.m3u8"))
    decode_all((tmp_path / "manifest.mpd").as_uri())
    grid = keyframe_times(tmp_path / "variants/240p/media_0.m3u8")
    assert grid[:3] == [0.0, 4.0, 8.0]
    for rung, height in zip(SHARED, (360, 480, 720), strict=False):
        playlist = tmp_path / "variants" / rung / "media_0.m3u8"
        probed = ffprobe(str(playlist))
        assert probed["streams"][0]["height"] == height
        assert abs(float(probed["format"]["duration"]) - 10.0) < 0.2
        assert keyframe_times(playlist) == grid, f"{rung} switches where 240p does"
        assert variants[rung]["bandwidth"] > 0
    # Seek previews from the same decode: a tile every 2 s, 160 px wide (16:9), one row.
    tiles = tjs[names.child_name(name, "storyboard")]["spec"]["variant"]["storyboardTiles"]
    assert tiles in (5, 6)  # 10 s, and a little more where the audio ends later
    assert (variants["storyboard"]["width"], variants["storyboard"]["height"]) == (160, 90)
    sprite = ffprobe(str(tmp_path / "variants/storyboard/storyboard.jpg"))["streams"][0]
    assert (sprite["width"], sprite["height"]) == (160 * tiles, 90)
    vtt = (tmp_path / "variants/storyboard/storyboard.vtt").read_text()
    assert vtt.count("storyboard.jpg#xywh=") == tiles

    # The probe's pod (its 240p) and the shared one ran the ffmpeg their Job's environment
    # launched before the worker loaded (`worker.launch`); the poster's has none.
    adopted = {log.parent.name.removeprefix(f"{name}-").rsplit("-", 1)[0]  # <job>-<pod id>
               for log in cluster.pods_dir.glob(f"{tenant}/{name}-*/worker.log")
               if "adopting ffmpeg, started" in log.read_text()}
    assert adopted == {"probe", "360p"}


def test_a_shared_jobs_worker_killed_once_is_retried_and_every_rung_published(
        tenant: str, assets: Assets, cluster: DevCluster, media_dir: Path) -> None:
    source = video_clip(media_dir, seconds=20, width=1280, height=720, channels=2)
    name = assets.upload(tenant, source)["metadata"]["name"]
    leader = names.child_name(name, "360p")

    def shared_worker() -> int | None:
        pods = assets.core.list_namespaced_pod(
            tenant, label_selector=f"{names.LABEL_ASSET}={name},job-name={leader}").items
        for pod in pods:
            if pod.status.phase == "Running":
                for pid in cluster.state_dir.rglob(
                        f"pods/{tenant}/{pod.metadata.name}/worker.pid"):
                    return int(pid.read_text().strip())
        return None

    pid = eventually(shared_worker, "the shared Job's worker running", timeout=120,
                     interval=0.05)
    time.sleep(0.5)  # into the encode
    os.killpg(pid, signal.SIGKILL)  # the node agent starts each container in its own group

    body = assets.wait_phase(tenant, name, "ready", complete=True, timeout=300)
    assert {v["state"] for v in body["status"]["variants"]} == {"succeeded"}
    # The asset is complete from the pod's result; the Job controller counts a moment later.
    def counted() -> Any:
        job = assets.batch.read_namespaced_job(leader, tenant)
        return job if job.status.succeeded else None

    job = eventually(counted, "the Job's count", timeout=30)
    assert (job.status.failed, job.status.succeeded) == (1, 1)
    tjs = {t["metadata"]["name"]: t for t in assets.transcode_jobs(tenant, name)}
    for rung in SHARED:
        status = tjs[names.child_name(name, rung)]["status"]
        assert (status["phase"], status["attempts"], status["jobName"]) == (
            "Succeeded", 1, leader), rung


def test_the_api_server_refuses_a_malformed_shared_decode(tenant: str, assets: Assets,
                                                          clip: Media) -> None:
    """The two fields are the operator's, but a TranscodeJob written by hand gets the
    schema's 422, naming the field, like any other bad spec."""
    name = assets.upload(tenant, clip)["metadata"]["name"]
    asset_id = names.asset_id_from_name(name)
    base = {"apiVersion": f"{names.GROUP}/{names.VERSION}", "kind": "TranscodeJob",
            "metadata": {"name": f"{name}-x", "namespace": tenant},
            "spec": {"assetRef": {"name": name}, "task": "video",
                     "input": {"key": keys.source_key(tenant, asset_id)},
                     "outputPrefix": keys.variant_prefix(tenant, asset_id, "x"),
                     "variant": {"name": "x", "type": "video", "height": 360}}}
    for field, value in (("alsoEncodes", [{"name": "Bad Name", "type": "video"}]),
                         ("alsoEncodes", [{"name": "y", "type": "sound"}]),
                         ("encodedBy", "m" * 64)):
        body = json.loads(json.dumps(base))
        body["spec"][field] = value
        with pytest.raises(ApiException) as caught:
            assets.custom.create_namespaced_custom_object(
                names.GROUP, names.VERSION, tenant, names.JOB_PLURAL, body)
        assert caught.value.status == 422, field
        assert f"spec.{field}" in json.loads(caught.value.body)["message"], field
