"""A real browser for the tests: Debian's Chromium driven by Playwright (never a browser
Playwright downloads), and a static web server on its own loopback origin.

Chromium runs headless with a fresh profile and nothing that reaches out by itself (no
sync, no component updates, no QUIC), since the machine's only network is loopback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("MEDIAPLANE_CHROMIUM", "/usr/bin/chromium"))
VENDOR_DIR = ROOT / "api" / "mediaplane" / "api" / "static" / "vendor"
ARTIFACTS_DIR = Path(os.environ.get("MEDIAPLANE_TEST_ARTIFACTS", ROOT / ".test-artifacts"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
]


@contextlib.contextmanager
def chromium(user_data_dir: Path) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile in `user_data_dir`."""
    if not CHROMIUM.is_file():
        raise RuntimeError(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium")
    with sync_playwright() as playwright:
        context = _launch(playwright, user_data_dir)
        try:
            yield context
        finally:
            context.close()


def _launch(playwright: Playwright, user_data_dir: Path) -> BrowserContext:
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 800})


class _Handler(SimpleHTTPRequestHandler):
    """Serves the test pages, and the vendored players under /vendor/."""

    def __init__(self, *args: object, pages: Path, **kwargs: object) -> None:
        super().__init__(*args, directory=str(pages), **kwargs)  # type: ignore[arg-type]

    def translate_path(self, path: str) -> str:
        route = urlsplit(path).path
        if route.startswith("/vendor/"):
            name = Path(route).name
            return str(VENDOR_DIR / name)
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        del format, args


@contextlib.contextmanager
def static_site(origin: str, pages: Path) -> Iterator[str]:
    """Serves `pages` (and the vendored players) on `origin`, a loopback http origin."""
    parts = urlsplit(origin)
    if parts.hostname != "127.0.0.1" or not parts.port:
        raise ValueError(f"{origin!r} is not a loopback origin with a port")
    handler = functools.partial(_Handler, pages=pages)
    server = ThreadingHTTPServer((parts.hostname, parts.port), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield origin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
