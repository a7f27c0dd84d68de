"""A real browser against the real API and storage: Debian's Chromium (Playwright), the
test pages on their own loopback origin, and one tenant's media made once per session
through the REST API: a 12-second 480p clip with a caption track (three video renditions,
audio, poster, storyboard), an image and an audio file."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from playwright.sync_api import BrowserContext, Page

from mediaplane.core.names import TENANT_LABEL
from mediaplane.devcluster.tokens import mint_dev_token
from tests.conftest import OperatorHandle
from tests.support import browser, media
from tests.support.api import ApiCallError, ApiUser

PAGES = Path(__file__).parent / "page"
CAPTION = "Hello from mediaplane"
CAPTION_VTT = ("WEBVTT\n\n00:00:00.500 --> 00:00:11.500\n" + CAPTION + "\n")


@dataclass(frozen=True)
class Library:
    user: ApiUser
    video: dict[str, Any]
    image: dict[str, Any]
    audio: dict[str, Any]


@pytest.fixture(scope="package")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """One browser for this package, closed after it: Playwright's sync API keeps an event
    loop set on the main thread while it runs, which the asyncio tests elsewhere must not
    find there."""
    with browser.chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


@pytest.fixture
def page(chromium: BrowserContext) -> Iterator[Page]:
    tab = chromium.new_page()
    yield tab
    tab.close()


@pytest.fixture(scope="session")
def site(web_origin: str) -> Iterator[str]:
    """The test pages, served from the origin the API allows (not the API's, not S3's)."""
    with browser.static_site(web_origin, PAGES) as origin:
        yield origin


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots the tests keep (MEDIAPLANE_TEST_ARTIFACTS, default .test-artifacts/)."""
    directory = browser.ARTIFACTS_DIR / "browser"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _complete(user: ApiUser, asset_id: str, timeout: float = 300.0) -> dict[str, Any]:
    """The asset once every variant has ended, all of them done."""
    deadline = time.monotonic() + timeout
    while True:
        asset = user.get(asset_id)
        states = {v["name"]: v["state"] for v in asset["variants"]}
        if asset["status"] in ("failed", "quarantined") or "failed" in states.values():
            raise ApiCallError(f"{asset_id} failed: {asset}")
        if asset["status"] == "ready" and states and set(states.values()) == {"succeeded"}:
            return asset
        if time.monotonic() > deadline:
            raise ApiCallError(f"{asset_id} not complete after {timeout}s: {states}")
        time.sleep(1.0)


@pytest.fixture(scope="session")
def library(kube_api: k8s.ApiClient, operator: OperatorHandle, api_url: str, jwt_secret: str,
            media_dir: Path) -> Iterator[Library]:
    del operator
    core = k8s.CoreV1Api(kube_api)
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": tenant, "labels": {TENANT_LABEL: "true"}}})
    user = ApiUser(api_url, tenant, "viewer", mint_dev_token(jwt_secret, tenant, "viewer", 7200))
    try:
        clip = media.video_clip(media_dir, seconds=12, width=854, height=480)
        ids = {name: user.upload(item) for name, item in (
            ("video", clip), ("image", media.png_image(media_dir)),
            ("audio", media.mp3_audio(media_dir)))}
        user.call("POST", f"/api/v1/media/{ids['video']}/captions", expect=201,
                  json={"language": "en", "content": CAPTION_VTT, "label": "English"})
        assets = {name: _complete(user, asset_id) for name, asset_id in ids.items()}
        yield Library(user, assets["video"], assets["image"], assets["audio"])
    finally:
        user.close()
        core.delete_namespace(tenant)
