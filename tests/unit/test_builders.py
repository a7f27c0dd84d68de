"""Job and TranscodeJob manifests: owner references, names, and the worker's lock-down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mediaplane.core import commands, names
from mediaplane.core.resources import MediaAsset, TranscodeJob
from mediaplane.core.tasks import (
    MediaKind,
    PresignedPost,
    SharedOutput,
    TaskType,
    VariantSpec,
    VariantType,
    WorkerTask,
)
from mediaplane.operator import builders
from mediaplane.operator.settings import OperatorSettings

ASSET_ID = "mda_" + "0123456789abcdefghjkmnpqrs"
ASSET_NAME = "mda-" + "0123456789abcdefghjkmnpqrs"


def asset() -> MediaAsset:
    made = MediaAsset.new("acme", ASSET_ID, kind=MediaKind.VIDEO, mime="video/mp4",
                          sha256="a" * 64, size_bytes=10)
    made.metadata.uid, made.metadata.generation = "uid-1", 1
    return made


RUNG = VariantSpec(name="360p", type=VariantType.VIDEO, height=360, video_bitrate_kbps=800)


def test_probe_transcode_job_is_owned_and_named_after_the_asset() -> None:
    body = builders.transcode_job(asset(), None).to_body()
    assert body["metadata"]["name"] == f"{ASSET_NAME}-probe"
    assert body["metadata"]["namespace"] == "acme"
    owner = body["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("MediaAsset", "uid-1", True)
    assert body["spec"] == {"assetRef": {"name": ASSET_NAME}, "task": "probe",
                            "input": {"key": f"tenants/acme/assets/{ASSET_ID}/source"}}
    assert "status" not in body


def test_variant_transcode_job_writes_only_under_its_variant_prefix() -> None:
    body = builders.transcode_job(asset(), RUNG).to_body()
    assert body["metadata"]["name"] == f"{ASSET_NAME}-360p"
    assert body["spec"]["outputPrefix"] == f"tenants/acme/assets/{ASSET_ID}/variants/360p/"
    assert body["spec"]["task"] == "video"
    assert body["spec"]["variant"] == {"name": "360p", "type": "video", "height": 360,
                                       "videoBitrateKbps": 800}
    assert body["metadata"]["labels"][names.LABEL_ASSET] == ASSET_NAME


def test_worker_job_has_no_credentials_and_bounded_runtime() -> None:
    tj = builders.transcode_job(asset(), RUNG)
    tj.metadata.uid = "uid-2"
    settings = OperatorSettings(job_deadline_seconds=600, job_backoff_limit=2)
    assert tj.spec.output_prefix is not None
    post = PresignedPost(url="http://s3/bucket", fields={"policy": "p"},
                         key_prefix=tj.spec.output_prefix)
    task = builders.worker_task(tj, asset(), "http://s3/get", post)
    job = builders.worker_job(tj, task, settings)

    assert job["metadata"]["name"] == tj.name
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-2"
    assert job["spec"]["backoffLimit"] == 2
    # Three attempts of 600 s with their starts, and the back-off before the two retries.
    assert job["spec"]["activeDeadlineSeconds"] == (600 + 30) * 3 + 10 + 20
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"
    assert pod["activeDeadlineSeconds"] == 600
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert set(env) == {"MEDIAPLANE_TASK", "MEDIAPLANE_SCRATCH", "MEDIAPLANE_RESULT_PATH",
                        "MEDIAPLANE_LAUNCH"}
    assert not any("SECRET" in value or "AWS" in name for name, value in env.items())
    decoded = WorkerTask.model_validate_json(env["MEDIAPLANE_TASK"])
    assert decoded.output is not None
    assert decoded.output.key_prefix == tj.spec.output_prefix
    assert decoded.variant == RUNG
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels[names.LABEL_TRANSCODE_JOB] == tj.name


def test_a_rendition_job_carries_its_first_command_for_the_pod_to_start_early() -> None:
    """The launch in the pod's environment is the task's own first command, rendered by the
    same builders the worker runs; a probe's pod, and any pod with the setting off, get
    none."""
    tj = builders.transcode_job(asset(), RUNG)
    tj.metadata.uid = "uid-2"
    assert tj.spec.output_prefix is not None
    post = PresignedPost(url="http://s3/bucket", fields={"policy": "p"},
                         key_prefix=tj.spec.output_prefix)
    task = builders.worker_task(tj, asset(), "http://s3/get?X-Amz-Signature=s", post)

    def launch(job: dict[str, Any]) -> dict[str, Any] | None:
        env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]
               ["env"]}
        return json.loads(env["MEDIAPLANE_LAUNCH"]) if "MEDIAPLANE_LAUNCH" in env else None

    on = launch(builders.worker_job(tj, task, OperatorSettings()))
    assert on is not None
    assert on["dirs"] == ["out"]
    assert on["argv"][0] == "ffmpeg"
    assert on["argv"][-1] == "out/manifest.mpd"
    assert "http://s3/get?X-Amz-Signature=s" in on["argv"]
    assert launch(builders.worker_job(tj, task, OperatorSettings(worker_launch=False))) is None
    probe = builders.transcode_job(asset(), None)
    probe.metadata.uid = "uid-3"
    probe_task = builders.worker_task(probe, asset(), "http://s3/get", None)
    assert launch(builders.worker_job(probe, probe_task, OperatorSettings())) is None
    # A probe whose pod encodes the lowest rung meanwhile starts with that encode.
    also = [SharedOutput(variant=RUNG, output=post, max_source_seconds=300)]
    encoding = builders.worker_task(probe, asset(), "http://s3/get", None, also)
    rung_launch = launch(builders.worker_job(probe, encoding, OperatorSettings()))
    assert rung_launch is not None
    assert rung_launch["dirs"] == ["out"]
    assert "http://s3/get" in rung_launch["argv"]
    # With the audio copied as well, the same ffmpeg writes both, through the tee muxer.
    copy = VariantSpec(name="audio", type=VariantType.AUDIO, audio_codec="aac",
                       audio_bitrate_kbps=128, audio_copy=True)
    both = builders.worker_task(probe, asset(), "http://s3/get", None,
                                [SharedOutput(variant=copy, output=post), *also])
    both_launch = launch(builders.worker_job(probe, both, OperatorSettings()))
    assert both_launch is not None
    assert both_launch["dirs"] == ["out", "out-audio"]
    argv = both_launch["argv"]
    assert argv[argv.index("-f") + 1] == "tee"
    assert argv[argv.index("-c:a") + 1] == "copy"
    video, audio = argv[-1].split("|")
    assert video.startswith("[select=v:")
    assert video.endswith("]out/manifest.mpd")
    assert audio.startswith("[select=a:")
    assert audio.endswith("]out-audio/manifest.mpd")
    assert "onfail=ignore" in audio, "the audio may fail without failing the rung"
    assert "onfail" not in video, "the rung's failure is the command's"


def test_the_tee_muxer_gets_no_output_its_parser_would_split() -> None:
    """The tee's outputs are `[options]path|...`: a path or value holding its separators
    is refused, not passed on to be read as another output."""
    copy = VariantSpec(name="audio", type=VariantType.AUDIO, audio_codec="aac",
                       audio_bitrate_kbps=128, audio_copy=True)
    for bad in ("out|x", "out:x", "out[x]", "o'ut"):
        with pytest.raises(ValueError, match="tee muxer"):
            commands.rung_and_audio_command("http://s3/get", RUNG, copy, Path(bad),
                                            Path("out-audio"))
    encoded = copy.model_copy(update={"audio_copy": False})
    with pytest.raises(ValueError, match="not a copy"):
        commands.rung_and_audio_command("http://s3/get", RUNG, encoded, Path("out"),
                                        Path("out-audio"))


def test_probe_task_carries_the_declared_facts() -> None:
    tj = builders.transcode_job(asset(), None)
    task = builders.worker_task(tj, asset(), "http://s3/get", None)
    assert task.type is TaskType.PROBE
    assert task.expected is not None
    assert (task.expected.sha256, task.expected.size_bytes) == ("a" * 64, 10)
    assert json.loads(task.model_dump_json())["inputUrl"] == "http://s3/get"


def test_presigned_urls_outlive_every_attempt() -> None:
    settings = OperatorSettings(job_deadline_seconds=100, job_backoff_limit=3)
    assert builders.presign_seconds(settings) > builders.job_deadline_seconds(settings) \
        == (100 + 30) * 4 + 10 + 20 + 40


def test_a_chunked_rung_is_an_indexed_job_retried_per_chunk() -> None:
    settings = OperatorSettings(job_deadline_seconds=600, job_backoff_limit=2)
    rung = RUNG.model_copy(update={"chunks": 20, "chunk_seconds": 60, "chunk_parallelism": 8})
    tj = builders.transcode_job(asset(), rung)
    tj.metadata.uid = "uid-2"
    task = WorkerTask(type=TaskType.VIDEO, input_url="https://s3/in", variant=rung,
                      output=PresignedPost(url="https://s3", fields={}, key_prefix="p/"))
    spec = builders.variant_job(tj, task, settings)["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == (
        "Indexed", 20, 8)
    assert "backoffLimit" not in spec
    assert spec["backoffLimitPerIndex"] == 2
    assert spec["maxFailedIndexes"] == 0
    assert spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2]
    # Three rounds of pods (8 + 8 + 4), each with its retries.
    assert spec["activeDeadlineSeconds"] == builders.job_deadline_seconds(settings) * 3
    assert builders.variant_presign_seconds(tj, settings) == spec["activeDeadlineSeconds"] + 600
    single = builders.transcode_job(asset(), RUNG)
    single.metadata.uid = "uid-3"
    one = builders.variant_job(single, task, settings)["spec"]
    assert "completionMode" not in one
    assert one["completions"] == 1


def test_only_an_encode_of_an_accepted_source_stores_segments_during_it() -> None:
    """`stream_segments` reaches every task but a speculative one (started before the
    probe's verdict, it must store nothing until then), and none when the setting is off."""
    post = PresignedPost(url="http://s3/bucket", fields={}, key_prefix="p/")
    rung = builders.transcode_job(asset(), RUNG)
    speculative = builders.transcode_job(asset(), RUNG, speculative=True)
    probe = builders.transcode_job(asset(), None)

    def streams(tj: TranscodeJob, setting: bool = True) -> bool:
        return builders.worker_task(tj, asset(), "http://s3/get", post,
                                    stream_segments=setting).stream_segments

    assert (streams(rung), streams(probe), streams(speculative)) == (True, True, False)
    assert not streams(rung, setting=False)
    assert not builders.worker_task(rung, asset(), "http://s3/get", post).stream_segments
