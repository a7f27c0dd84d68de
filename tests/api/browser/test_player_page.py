"""The player page the API serves, in Chromium, as a viewer uses it: the signed link from the
asset's GET, the poster, rendition and caption choice, seek previews from the storyboard,
playback to the end with each engine; images and audio; and links that cannot play showing
why instead of a broken player."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from mediaplane.api.auth import Principal
from mediaplane.api.signing import StreamSigner
from tests.api.browser.conftest import CAPTION, Library

TIMEOUT_MS = 60_000


DIAGNOSE = """() => {
    const video = document.querySelector('#mp-video');
    const ranges = (r) => [...Array(r.length).keys()].map(i => [r.start(i), r.end(i)]);
    return {
        state: document.querySelector('#mp-player')?.dataset.state,
        message: document.querySelector('#mp-message')?.textContent,
        video: video && {currentTime: video.currentTime, duration: video.duration,
                         paused: video.paused, ended: video.ended, readyState: video.readyState,
                         buffered: ranges(video.buffered), height: video.videoHeight,
                         error: video.error && video.error.message},
    };
}"""


def until(page: Page, expression: str, timeout_ms: int = TIMEOUT_MS) -> None:
    """Polls a JavaScript expression until it is true. Playwright's wait_for_function builds
    its predicate with eval, which the page's Content-Security-Policy forbids (as it
    should); evaluate goes through the DevTools protocol, which a CSP does not govern."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout_ms} ms: {expression} "
                                 f"({page.evaluate(DIAGNOSE)})")
        time.sleep(0.1)


def _wait_options(page: Page, selector: str, count: int) -> list[str]:
    until(page, f"document.querySelectorAll('{selector} option').length >= {count}")
    labels: list[str] = page.eval_on_selector_all(f"{selector} option",
                                                  "els => els.map(e => e.textContent)")
    return labels


def _image_width(page: Page, url: str) -> int:
    width: int = page.evaluate("""url => new Promise(resolve => {
        const image = new Image();
        image.onload = () => resolve(image.naturalWidth);
        image.onerror = () => resolve(0);
        image.src = url;
    })""", url)
    return width


def _play_to_the_end(page: Page) -> None:
    """Seek close to the end with the page's own seek bar, then let it play out."""
    if page.eval_on_selector("#mp-video", "v => v.paused"):
        page.click("#mp-play")
    until(page, "document.querySelector('#mp-video').currentTime > 0.5")
    page.eval_on_selector("#mp-seek", """seek => {
        seek.value = "930";
        seek.dispatchEvent(new Event("input", { bubbles: true }));
    }""")
    until(page, "document.querySelector('#mp-player').dataset.state === 'ended'")


def test_video_plays_with_renditions_captions_poster_and_seek_previews(
        page: Page, library: Library, artifacts: Path) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{m.text} {m.location}")
            if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(library.video["player"])
    assert response is not None
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    qualities = _wait_options(page, "#mp-quality", 4)
    assert qualities[0] == "Auto"
    assert sorted(qualities[1:]) == ["240p", "360p", "480p"]
    assert "English" in _wait_options(page, "#mp-captions", 2)
    poster = page.get_attribute("#mp-video", "poster") or ""
    assert "/variants/poster/poster.jpg?" in poster
    assert _image_width(page, poster) > 0, "the presigned poster loads"
    page.screenshot(path=str(artifacts / "player-page-poster.png"))

    page.click("#mp-play")
    until(page, "document.querySelector('#mp-video').currentTime > 1")
    page.select_option("#mp-quality", label="240p")
    until(page, "[240, 241].includes(document.querySelector('#mp-video').videoHeight)")
    until(page, "[...document.querySelector('#mp-video').textTracks].some(t => "
          f"t.mode === 'showing' && [...(t.cues || [])].some(c => c.text === {CAPTION!r}))")

    # Hovering the middle of the seek bar shows the storyboard tile of second 6: the 4th of
    # 6 tiles (2 s apart, one row of 160 px tiles), from the presigned sprite.
    until(page, "document.querySelector('#mp-player').dataset.storyboard === '6'")
    box = page.locator("#mp-seek").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.51, box["y"] + box["height"] / 2)
    preview = page.locator("#mp-preview")
    preview.wait_for(state="visible")
    assert preview.get_attribute("data-start") == "6"
    style = page.eval_on_selector("#mp-preview .mp-preview-image", """e => ({
        image: e.style.backgroundImage, position: e.style.backgroundPosition,
        width: e.style.width })""")
    assert "/variants/storyboard/storyboard.jpg?" in style["image"]
    assert (style["position"], style["width"]) == ("-480px 0px", "160px")
    sprite = style["image"].removeprefix('url("').removesuffix('")')
    assert _image_width(page, sprite) == 6 * 160
    page.screenshot(path=str(artifacts / "player-page-seek-preview.png"))

    page.mouse.move(0, 0)
    page.select_option("#mp-captions", value="off")
    _play_to_the_end(page)
    page.screenshot(path=str(artifacts / "player-page-ended.png"))
    assert errors == [], "the page runs under its own Content-Security-Policy without errors"


@pytest.mark.parametrize("engine", ["dash", "shaka"])
def test_video_plays_with_the_dash_engines(page: Page, library: Library, artifacts: Path,
                                           engine: str) -> None:
    response = page.goto(f"{library.video['player']}&engine={engine}")
    assert response is not None
    assert response.status == 200
    qualities = _wait_options(page, "#mp-quality", 4)
    assert sorted(qualities[1:]) == ["240p", "360p", "480p"]
    assert "English" in _wait_options(page, "#mp-captions", 2)
    _play_to_the_end(page)
    assert page.eval_on_selector("#mp-video", "v => v.currentTime") >= 11.0
    page.screenshot(path=str(artifacts / f"player-page-{engine}.png"))


def test_image_and_audio_play_in_the_page(page: Page, library: Library,
                                          artifacts: Path) -> None:
    page.goto(library.image["player"])
    until(page, "document.querySelector('#mp-player').dataset.state === 'ready'")
    width = page.eval_on_selector("#mp-image", "img => img.naturalWidth")
    assert width > 0
    page.screenshot(path=str(artifacts / "player-page-image.png"))

    page.goto(library.audio["player"])
    page.click("#mp-play")
    until(page, "document.querySelector('#mp-video').currentTime > 0.5")
    assert page.eval_on_selector("#mp-video", "v => v.classList.contains('mp-audio')")


def test_links_that_cannot_play_say_why(page: Page, library: Library, stream_key: str,
                                        artifacts: Path) -> None:
    link = library.video["player"]
    base, token = link.split("token=")
    signer = StreamSigner(stream_key, 3600)
    principal = Principal(tenant=library.user.tenant, user=library.user.user)
    expired = signer.token(signer.sign(principal, library.video["id"], now=time.time() - 7200))
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    other = library.audio["player"].split("token=")[1]
    cases = {"expired": (expired, "stream.signature.expired", "expired"),
             "tampered": (tampered, "stream.signature.invalid", "not valid"),
             "other-asset": (other, "stream.signature.invalid", "not valid")}
    for name, (bad, code, words) in cases.items():
        response = page.goto(base + "token=" + bad)
        assert response is not None
        assert response.status == 403, name
        error = page.locator(".mp-error")
        assert error.get_attribute("data-code") == code, name
        assert words in (page.text_content(".mp-error-text") or ""), name
        assert page.locator("#mp-video").count() == 0, "no player for a link that cannot play"
        page.screenshot(path=str(artifacts / f"player-page-{name}.png"))
    # A client that does not ask for HTML gets the contract's envelope.
    plain = httpx.get(base + "token=" + expired, headers={"Accept": "application/json"})
    assert (plain.status_code, plain.json()["error"]["code"]) == (403,
                                                                  "stream.signature.expired")
