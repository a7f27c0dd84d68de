"""A worker pod's start-up is on the path to playable: the worker starts ffmpeg having loaded
what it needs to read its task and build the command, and nothing that only publishing,
other task types or the long-lived services need (`make bench` measures what that saves)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .conftest import Media

import pytest

from tests.support.origin import origin as serving

ASSET = "mda_01arz3ndektsv4rrffq69g5fav"
# Loaded after ffmpeg has started (httpx, for the upload), for other tasks only (webvtt:
# storyboards), or never in a worker (structlog: the services' logging; rich, click,
# pygments: developer tools a virtualenv may hold; the resources' models: the operator's).
NOT_BEFORE_FFMPEG = ("httpx", "httpcore", "webvtt", "structlog", "rich", "click", "pygments",
                     "mediaplane.core.resources", "boto3", "botocore", "kubernetes", "kopf")


@pytest.fixture
def origin(media: Media, tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server standing in for S3: GET serves the test clip (its index moved
    to the front: this server does not answer ranged reads), POST (the presigned upload)
    accepts anything."""
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media.clip), "-c", "copy", "-movflags",
                    "+faststart", str(served / "clip.mp4")], check=True, timeout=60)

    with serving(served) as base:
        yield base


def test_a_rendition_worker_starts_ffmpeg_before_loading_what_it_needs_later(
        origin: str, tmp_path: Path) -> None:
    """The real worker entry point encodes and publishes a 240p rung of the test clip. The
    modules loaded at the moment it spawns ffmpeg are recorded by a wrapper around the real
    `process.run`."""
    task = {"type": "video", "input_url": f"{origin}/clip.mp4",
            "output": {"url": f"{origin}/upload", "fields": {"policy": "p"},
                       "keyPrefix": f"t-abc/{ASSET}/240p/"},
            "variant": {"name": "240p", "type": "video", "height": 240,
                        "videoBitrateKbps": 400}}
    code = textwrap.dedent(f"""
        import json, sys
        from mediaplane.worker import main, process

        at_spawn = []
        real_run = process.run

        def run(argv, **kwargs):
            at_spawn.append([argv[0], [m for m in {NOT_BEFORE_FFMPEG!r} if m in sys.modules]])
            return real_run(argv, **kwargs)

        process.run = run
        code = main.main({{"MEDIAPLANE_TASK": {json.dumps(task)!r},
                           "MEDIAPLANE_RESULT_PATH": {str(tmp_path / "result")!r},
                           "MEDIAPLANE_SCRATCH": {str(tmp_path)!r}}})
        print(json.dumps({{"exit": code, "at_spawn": at_spawn}}))
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["exit"] == 0, (tmp_path / "result").read_text()
    assert json.loads((tmp_path / "result").read_text())["output"]["name"] == "240p"
    assert report["at_spawn"] == [["ffmpeg", []]]
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert lines, "the worker logged nothing"
    assert {(e["service"], e["task"], e["asset_id"]) for e in lines} == {
        ("worker", "video", ASSET)}
