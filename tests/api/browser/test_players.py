"""hls.js, dash.js and Shaka Player, as a web app on another origin uses them, in Chromium.

The page is served from its own loopback port; the API and the storage are two others. Each
player gets the signed link the asset's GET returned and must play the 12-second clip to its
end, offer every rendition (three video rungs here), decode at least two of them as it is
told to switch, and put the caption's cue on the video's text track. Links of another asset,
or expired ones, must fail cleanly: the player reports HTTP 403, which a script can only read
because error answers carry CORS headers too.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from mediaplane.api.auth import Principal
from mediaplane.api.signing import StreamSigner
from tests.api.browser.conftest import CAPTION, Library

CLIP_SECONDS = 12.0
TIMEOUT_MS = 90_000


def run(page: Page, site: str, engine: str, url: str, **options: Any) -> dict[str, Any]:
    page.goto(f"{site}/players.html")
    result: dict[str, Any] = page.evaluate(
        "([engine, url, options]) => window.run(engine, url, options)",
        [engine, url, {"timeoutMs": TIMEOUT_MS, **options}])
    return result


def link(library: Library, engine: str) -> str:
    streams = library.video["streams"]
    return str(streams["hls"] if engine == "hls" else streams["dash"])


@pytest.mark.parametrize("engine", ["hls", "dash", "shaka"])
def test_player_plays_the_signed_link_to_the_end(page: Page, site: str, library: Library,
                                                  artifacts: Path, engine: str) -> None:
    result = run(page, site, engine, link(library, engine))
    page.screenshot(path=str(artifacts / f"players-{engine}.png"))
    (artifacts / f"players-{engine}.json").write_text(json.dumps(result, indent=2))
    summary = {k: result.get(k) for k in ("currentTime", "ended", "renditions", "heights",
                                          "textTracks", "errors")}
    assert not result.get("failure"), summary
    assert result["ended"], summary
    assert result["currentTime"] >= CLIP_SECONDS - 1.0, summary
    assert sorted(h for h in result["renditions"] if h) == [240, 360, 480], summary
    assert len(result["heights"]) >= 2, f"no rendition switch was decoded: {summary}"
    assert "en" in result["textTracks"], summary
    assert any(c["text"] == CAPTION for c in result["cues"]), \
        f"the caption never reached a text track: {result['cues']}"


def test_ffmpeg_decodes_the_signed_dash_to_the_end(library: Library) -> None:
    """The third mainstream reader of the same signed MPD: every frame of the lowest video
    rendition (12 s at 25 fps) and the audio decode, with no error."""
    url = library.video["streams"]["dash"]
    # The side-loaded WebVTT is a stream ffmpeg's DASH reader opens but has no decoder for:
    # every video and audio stream is decoded.
    decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", url, "-map", "0:v", "-map", "0:a",
                              "-f", "null", "-"], capture_output=True, text=True, timeout=180)
    assert decoded.returncode == 0, decoded.stderr[-2000:]
    assert not decoded.stderr.strip(), decoded.stderr[-2000:]
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=nb_read_frames", "-of", "json", url],
        check=True, capture_output=True, text=True, timeout=120)
    assert int(json.loads(probed.stdout)["streams"][0]["nb_read_frames"]) == 300


def _expired_token(stream_key: str, library: Library, asset_id: str) -> str:
    signer = StreamSigner(stream_key, 3600)
    grant = signer.sign(Principal(tenant=library.user.tenant, user=library.user.user),
                        asset_id, now=time.time() - 7200)
    return signer.token(grant)


@pytest.mark.parametrize("engine", ["hls", "dash", "shaka"])
def test_a_link_of_another_asset_fails_cleanly(page: Page, site: str, library: Library,
                                               engine: str) -> None:
    other_token = library.audio["streams"]["hls"].split("token=")[1]
    url = link(library, engine).split("token=")[0] + "token=" + other_token
    result = run(page, site, engine, url)
    assert result.get("failure"), result
    assert result["failure"]["status"] == 403, result["failure"]
    assert not result["ended"]


@pytest.mark.parametrize("engine", ["hls", "dash"])
def test_an_expired_link_fails_cleanly(page: Page, site: str, library: Library,
                                       stream_key: str, engine: str) -> None:
    token = _expired_token(stream_key, library, library.video["id"])
    url = link(library, engine).split("token=")[0] + "token=" + token
    result = run(page, site, engine, url)
    assert result.get("failure"), result
    assert result["failure"]["status"] == 403, result["failure"]


def test_the_json_api_answers_allowed_origins_only(page: Page, site: str, library: Library,
                                                   api_url: str) -> None:
    """The page's origin is on the API's allow-list: a bearer call (preflighted) works and
    the request id is readable. The same page from another origin is refused by the
    browser itself."""
    url = f"{api_url}/api/v1/media/{library.video['id']}"
    page.goto(f"{site}/players.html")
    allowed = page.evaluate("([u, t]) => window.apiGet(u, t)", [url, library.user.token])
    assert allowed.get("status") == 200, allowed
    assert allowed["body"]["data"]["id"] == library.video["id"]
    assert allowed["requestId"], "X-Request-ID is exposed to scripts"
    elsewhere = site.replace("127.0.0.1", "localhost")  # the same server, another origin
    page.goto(f"{elsewhere}/players.html")
    refused = page.evaluate("([u, t]) => window.apiGet(u, t)", [url, library.user.token])
    assert "blocked" in refused, refused
