"""The whole upload-to-stream flow over HTTP, as a browser and a player would do it."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import m3u8
import pytest
from kubernetes import client as k8s

from mediaplane.api.auth import Principal
from mediaplane.api.signing import StreamSigner
from mediaplane.core.names import TENANT_LABEL
from mediaplane.devcluster.tokens import mint_dev_token
from tests.conftest import OperatorHandle
from tests.support.api import ApiUser, error_code, post_form
from tests.support.media import Media
from tests.support.wait import eventually

VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello from the test\n\n" \
      "00:00:01.500 --> 00:00:03.000\nSecond cue\n"
SRT = "1\n00:00:00,000 --> 00:00:01,500\nBonjour\n\n2\n00:00:01,500 --> 00:00:03,000\n" \
      "Deuxième <i>ligne</i>\n"


@dataclass
class ReadyVideo:
    user: ApiUser
    asset_id: str
    asset: dict[str, Any]
    stream_key: str


@pytest.fixture(scope="module")
def ready_video(api_url: str, kube_api: k8s.ApiClient, operator: OperatorHandle,
                clip: Media, jwt_secret: str, stream_key: str) -> Iterator[ReadyVideo]:
    """One video uploaded through the API and transcoded, shared by this module's tests."""
    del operator
    core = k8s.CoreV1Api(kube_api)
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": tenant, "labels": {TENANT_LABEL: "true"}}})
    user = ApiUser(api_url, tenant, "alice", mint_dev_token(jwt_secret, tenant, "alice", 3600))
    try:
        grant = user.upload_url(clip)
        assert grant["uploadRequired"] is True
        assert grant["uploadFields"]["key"] == \
            f"tenants/{tenant}/assets/{grant['assetId']}/source"
        # Before the bytes are there, there is no asset yet, and finalize says so.
        response = user.client.post(f"/api/v1/media/{grant['assetId']}/finalize",
                                    json={"etag": "0" * 32})
        assert response.status_code == 404
        assert error_code(response) == "media.not_found"
        assert "upload URL first" in response.json()["error"]["message"]
        etag = post_form(grant, clip.data, clip.path.name)
        finalized = user.finalize(grant["assetId"], etag)["data"]
        assert finalized["id"] == grant["assetId"]
        # Finalize again: harmless, same answer.
        assert user.finalize(grant["assetId"], etag)["data"]["id"] == grant["assetId"]
        user.wait_status(grant["assetId"], "ready")  # playable: lowest rung + audio

        def complete() -> dict[str, Any] | None:
            got = user.get(grant["assetId"])
            return got if all(v["state"] == "succeeded" for v in got["variants"]) else None

        asset = eventually(complete, "every variant done", timeout=240, interval=0.5,
                           explain=lambda: user.get(grant["assetId"]))
        yield ReadyVideo(user, grant["assetId"], asset, stream_key)
    finally:
        user.close()
        core.delete_namespace(tenant)


def _ffprobe(url: str) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", url],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_ready_asset_has_the_contract_shape(ready_video: ReadyVideo, clip: Media) -> None:
    asset = ready_video.asset
    assert asset["id"] == ready_video.asset_id
    assert (asset["kind"], asset["source"], asset["status"], asset["mime"]) == \
        ("video", "upload", "ready", "video/mp4")
    assert (asset["width"], asset["height"]) == (640, 360)
    assert asset["durationSeconds"] == pytest.approx(4.0, abs=0.2)
    assert (asset["sha256"], asset["sizeBytes"]) == (clip.sha256, clip.size)
    names = {v["name"] for v in asset["variants"] if v["state"] == "succeeded"}
    assert {"240p", "360p", "audio"} <= names
    assert asset["captions"] == []
    assert asset["transcript"] is None
    assert asset["streams"]["hls"].startswith(ready_video.user.base_url)


def test_hls_master_variant_segment_and_ffprobe(ready_video: ReadyVideo) -> None:
    streams = ready_video.asset["streams"]
    master_response = httpx.get(streams["hls"])  # a plain client: no headers, no cookies
    assert master_response.status_code == 200
    assert master_response.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    master = m3u8.loads(master_response.text)
    assert master.is_variant
    assert len(master.playlists) >= 2
    variant = m3u8.loads(httpx.get(master.playlists[0].uri).text)
    assert variant.is_endlist
    assert variant.segments
    init = httpx.get(variant.segment_map[0].uri)
    segment = httpx.get(variant.segments[0].uri)
    assert init.status_code == 200
    assert init.content[4:8] == b"ftyp"
    assert segment.status_code == 200
    assert len(segment.content) > 1000
    probed = _ffprobe(streams["hls"])
    kinds = {s["codec_type"] for s in probed["streams"]}
    assert {"video", "audio"} <= kinds
    assert float(probed["format"]["duration"]) == pytest.approx(4.0, abs=0.5)


def test_dash_mpd_lists_fetchable_segments_and_ffprobe_reads_it(ready_video: ReadyVideo) -> None:
    url = ready_video.asset["streams"]["dash"]
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/dash+xml")
    assert "SegmentURL" in response.text
    segment_url = response.text.split('SegmentURL media="', 1)[1].split('"', 1)[0]
    assert httpx.get(segment_url.replace("&amp;", "&")).status_code == 200
    probed = _ffprobe(url)
    assert {"video", "audio"} <= {s["codec_type"] for s in probed["streams"]}


def test_single_variant_links(ready_video: ReadyVideo) -> None:
    variants = ready_video.user.call("GET", f"/api/v1/media/{ready_video.asset_id}/variants")
    by_name = {v["name"]: v for v in variants["data"]}
    low = by_name["240p"]
    assert low["height"] == 240
    assert low["hls"]
    assert low["dash"]
    probed = _ffprobe(low["hls"])
    assert [s["height"] for s in probed["streams"] if s["codec_type"] == "video"] == [240]
    assert by_name["poster"]["url"]
    assert httpx.get(by_name["poster"]["url"]).status_code == 200
    storyboard = httpx.get(by_name["storyboard"]["url"])
    assert storyboard.status_code == 200
    assert storyboard.text.startswith("WEBVTT")
    sprite = storyboard.text.split("#xywh=")[0].rsplit("\n", 1)[1]
    assert httpx.get(sprite).headers["content-type"] == "image/jpeg", "the sprite is presigned"


def _with_token(url: str, token: str) -> str:
    return url.split("?token=")[0] + "?token=" + token


def test_stream_links_are_signed_per_user_and_asset(ready_video: ReadyVideo,
                                                    jwt_secret: str) -> None:
    url = ready_video.asset["streams"]["hls"]
    token = parse_qs(urlparse(url).query)["token"][0]
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (_with_token(url, tampered), url.split("?")[0]):
        response = httpx.get(bad)
        assert response.status_code == 403
        assert error_code(response) == \
            "stream.signature.invalid"
    signer = StreamSigner(ready_video.stream_key, 60)
    owner = Principal(ready_video.user.tenant, "alice")
    expired = signer.token(signer.sign(owner, ready_video.asset_id, now=time.time() - 3600))
    response = httpx.get(_with_token(url, expired))
    assert response.status_code == 403
    assert error_code(response) == "stream.signature.expired"
    # Another asset's link does not open this one.
    other = signer.token(signer.sign(owner, "mda_" + "0" * 26))
    response = httpx.get(_with_token(url, other))
    assert response.status_code == 403
    assert error_code(response) == "stream.signature.invalid"
    # Alice's link used by Bob (same tenant, sending his own bearer) is refused.
    bob = mint_dev_token(jwt_secret, ready_video.user.tenant, "bob", 600)
    response = httpx.get(url, headers={"Authorization": f"Bearer {bob}"})
    assert response.status_code == 403
    assert error_code(response) == "stream.signature.invalid"
    # A key other than the service's signs nothing.
    forged = StreamSigner("x" * 48, 600)
    response = httpx.get(_with_token(url, forged.token(forged.sign(owner,
                                                                    ready_video.asset_id))))
    assert response.status_code == 403


def test_vtt_and_srt_captions_round_trip_into_both_manifests(ready_video: ReadyVideo) -> None:
    user, asset_id = ready_video.user, ready_video.asset_id
    created = user.call("POST", f"/api/v1/media/{asset_id}/captions", expect=201,
                        json={"language": "en-US", "content": VTT})["data"]
    assert created["language"] == "en-US"
    assert created["approved"] is True
    user.call("POST", f"/api/v1/media/{asset_id}/captions", expect=201,
              json={"language": "fr", "content": SRT, "label": "Français"})
    tracks = {c["language"]: c for c in user.call("GET",
                                                  f"/api/v1/media/{asset_id}/captions")["data"]}
    assert set(tracks) == {"en-US", "fr"}
    assert all(t["approved"] and t["source"] == "manual" for t in tracks.values())
    english = httpx.get(tracks["en-US"]["url"]).text
    assert english.startswith("WEBVTT")
    assert "Hello from the test" in english
    french = httpx.get(tracks["fr"]["url"]).text
    assert french.startswith("WEBVTT")
    assert "00:00:01.500 --> 00:00:03.000" in french
    assert "Deuxième <i>ligne</i>" in french
    only_fr = user.call("GET", f"/api/v1/media/{asset_id}/captions", params={"lang": "fr"})
    assert [c["language"] for c in only_fr["data"]] == ["fr"]

    asset = user.get(asset_id)
    master = m3u8.loads(httpx.get(asset["streams"]["hls"]).text)
    subtitles = [m for m in master.media if m.type == "SUBTITLES"]
    assert {m.language for m in subtitles} == {"en-US", "fr"}
    subtitle_playlist = m3u8.loads(httpx.get(subtitles[0].uri).text)
    assert httpx.get(subtitle_playlist.segments[0].uri).text.startswith("WEBVTT")
    assert all(p.stream_info.subtitles == "subs" for p in master.playlists)
    mpd = httpx.get(asset["streams"]["dash"]).text
    assert 'mimeType="text/vtt"' in mpd
    assert 'lang="fr"' in mpd
    assert 'lang="en-US"' in mpd

    for bad in ("WEBVTT\n\nthis is not a cue\n", "just some text", ""):
        response = user.client.post(f"/api/v1/media/{asset_id}/captions",
                                    json={"language": "de", "content": bad})
        assert response.status_code == 422, response.text
        assert error_code(response) in ("validation.caption", "validation.invalid")
    assert "de" not in {c["language"] for c in user.call(
        "GET", f"/api/v1/media/{asset_id}/captions")["data"]}


def test_transcript_is_404_until_one_exists(ready_video: ReadyVideo) -> None:
    response = ready_video.user.client.get(
        f"/api/v1/media/{ready_video.asset_id}/transcript", params={"lang": "en-US"})
    assert response.status_code == 404
    assert error_code(response) == "transcript.not_found"


def test_upload_of_the_same_bytes_needs_no_upload(ready_video: ReadyVideo, clip: Media) -> None:
    grant = ready_video.user.upload_url(clip)
    assert grant["assetId"] == ready_video.asset_id
    assert grant["uploadRequired"] is False
    assert grant["uploadUrl"] is None
