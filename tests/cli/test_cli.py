"""The `mediaplane` command as a user runs it: a real process against the real API, the
operator, the control plane and S3 of the test session.

Two ways of finding the API are used, as users would: the dev environment's state (the
session's cluster is a dev cluster: `MEDIAPLANE_DEV_DIR` points the command at it, which
mints a dev token for `--tenant`), and `MEDIAPLANE_API_URL` + `MEDIAPLANE_TOKEN` as for a
real install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.ports import free_port
from mediaplane.devcluster.tokens import mint_dev_token
from tests.support import media
from tests.support.apienv import UserFactory
from tests.support.media import Media

Run = Callable[..., subprocess.CompletedProcess[str]]


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> \
        subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mediaplane.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEDIAPLANE_") and k != "KUBECONFIG"}
    env["COLUMNS"] = "200"  # long ids and links on one line
    env["MEDIAPLANE_DEV_DIR"] = str(tmp_path / "no-dev-environment")
    return env


@pytest.fixture
def dev_profile(cluster: DevCluster, api_url: str, tmp_path: Path) -> Callable[[str], Run]:
    """The command pointed at the session's dev environment, as a user of `make dev` has it."""
    del api_url

    def for_tenant(tenant: str) -> Run:
        env = {**_base_env(tmp_path), "MEDIAPLANE_DEV_DIR": str(cluster.state_dir),
               "MEDIAPLANE_TENANT": tenant, "MEDIAPLANE_USER": "cli-user"}
        return lambda *args, timeout=300: _run(list(args), env, timeout)

    return for_tenant


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _line_with(text: str, needle: str) -> str:
    found = [line for line in text.splitlines() if needle in line]
    assert found, f"no line with {needle!r} in:\n{text}"
    return found[0]


def test_upload_watch_play_list_and_delete(dev_profile: Callable[[str], Run],
                                           make_tenant: Callable[..., str], clip: Media,
                                           image: Media, tmp_path: Path) -> None:
    mediaplane = dev_profile(make_tenant())
    # Two files at once, watched until every variant ended.
    out = _ok(mediaplane("upload", str(clip.path), str(image.path), "--wait"))
    clip_id = _line_with(out, f"{clip.path.name}: uploaded and finalized as").split()[5]
    image_id = _line_with(out, f"{image.path.name}: uploaded and finalized as").split()[5]
    assert clip_id.startswith("mda_")
    assert image_id.startswith("mda_")
    for asset_id in (clip_id, image_id):
        assert f"{asset_id} playable after" in out
        assert f"{asset_id} complete after" in out
        assert f"{asset_id}: play it: http" in out

    # The same bytes again: nothing is sent, the command says why.
    again = _ok(mediaplane("upload", str(clip.path)))
    assert f"already uploaded as {clip_id} (deduplicated" in again

    asset = json.loads(_ok(mediaplane("get", clip_id, "-o", "json")))
    assert asset["status"] == "ready"
    assert {v["state"] for v in asset["variants"]} == {"succeeded"}
    table = _ok(mediaplane("get", clip_id))
    assert "variants" in table
    assert "240p" in table
    assert "succeeded" in table

    # play: the signed player link, which the API serves as the player page.
    link = _ok(mediaplane("play", clip_id, "--no-open")).strip()
    assert link.startswith(asset["player"].split("?")[0] + "?token=")
    page = httpx.get(link, headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200
    assert 'id="mp-config"' in page.text
    dash = _ok(mediaplane("play", clip_id, "--engine", "dash", "--no-open")).strip()
    assert dash.endswith("&engine=dash")

    # ls: filters and paging as the contract has them.
    videos = json.loads(_ok(mediaplane("ls", "--kind", "video", "-o", "json")))
    assert [a["id"] for a in videos["data"]] == [clip_id]
    first = mediaplane("ls", "--page-size", "1")
    assert first.returncode == 0
    assert "more: mediaplane ls --cursor" in first.stderr
    every = json.loads(_ok(mediaplane("ls", "--page-size", "1", "--all", "-o", "json")))
    assert sorted(a["id"] for a in every["data"]) == sorted([clip_id, image_id])
    assert every["nextCursor"] is None

    # captions: add a manual track and list it.
    vtt = tmp_path / "en.vtt"
    vtt.write_text("WEBVTT\n\n00:00.000 --> 00:02.000\nHello there.\n")
    assert "added en-US captions" in _ok(mediaplane("captions", "add", clip_id, str(vtt),
                                                    "--language", "en-US"))
    tracks = json.loads(_ok(mediaplane("captions", "ls", clip_id, "-o", "json")))
    assert [(t["language"], t["source"], t["approved"]) for t in tracks] == [
        ("en-US", "manual", True)]

    # rm, then the asset is gone: the contract's code, exit 1.
    assert f"deleted {clip_id}" in _ok(mediaplane("rm", clip_id))
    gone = mediaplane("get", clip_id)
    assert gone.returncode == 1
    assert "media.not_found" in gone.stderr
    assert "HTTP 404" in gone.stderr


def test_wait_ends_with_exit_4_for_a_quarantined_asset(dev_profile: Callable[[str], Run],
                                                       make_tenant: Callable[..., str],
                                                       media_dir: Path,
                                                       tmp_path: Path) -> None:
    png = media.png_image(media_dir, 320, 200)
    fake = tmp_path / "not-a-video.mp4"
    shutil.copy(png.path, fake)
    done = dev_profile(make_tenant())("upload", str(fake), "--wait", "--until", "playable")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "quarantined" in done.stdout


def test_errors_show_the_contract_code_and_exit_codes(
        api_url: str, jwt_secret: str, make_tenant: Callable[..., str],
        make_user: UserFactory, tmp_path: Path) -> None:
    tenant = make_tenant()
    token = mint_dev_token(jwt_secret, tenant, "bob", 600)
    env = {**_base_env(tmp_path), "MEDIAPLANE_API_URL": api_url, "MEDIAPLANE_TOKEN": token}

    missing = _run(["get", "mda_00000000000000000000000000"], env)
    assert missing.returncode == 1
    assert "media.not_found" in missing.stderr
    assert "request " in missing.stderr

    unsupported = tmp_path / "notes.txt"
    unsupported.write_text("not media")
    refused = _run(["upload", str(unsupported)], env)
    assert refused.returncode == 1, refused.stderr
    assert "validation.mime.unsupported" in refused.stdout + refused.stderr

    bad_token = _run(["ls"], {**env, "MEDIAPLANE_TOKEN": "not-a-jwt"})
    assert bad_token.returncode == 1
    assert "auth.unauthenticated" in bad_token.stderr

    nowhere = _run(["ls"], {**env, "MEDIAPLANE_API_URL": f"http://127.0.0.1:{free_port()}"})
    assert nowhere.returncode == 3
    assert "cannot reach the API" in nowhere.stderr

    unconfigured = _run(["ls"], _base_env(tmp_path))
    assert unconfigured.returncode == 3
    assert "mediaplane dev up" in unconfigured.stderr

    usage = _run(["ls", "--page-size", "0"], env)
    assert usage.returncode == 2

    # A real install's profile works the same for reads: the tenant's (empty) list.
    listing: dict[str, Any] = json.loads(_ok(_run(["ls", "-o", "json"], env)))
    assert listing == {"data": [], "nextCursor": None}
    del make_user


def test_ai_speech_is_generated_and_watched(dev_profile: Callable[[str], Run],
                                            make_tenant: Callable[..., str]) -> None:
    mediaplane = dev_profile(make_tenant())
    caps = json.loads(_ok(mediaplane("ai", "capabilities", "-o", "json")))
    assert "en_US-joe-medium" in {v["id"] for v in caps["speech"]["voices"]}
    out = _ok(mediaplane("ai", "speech", "Hello from the command line.", "--wait",
                         "--until", "playable"))
    assert "playable after" in out
    assert "play it: http" in out
