"""A worker pod's start-up is on the path to playable: the worker starts ffmpeg having loaded
what it needs to read its task and build the command, and nothing that only publishing,
other task types or the long-lived services need (`make bench` measures what that saves).
Where the operator rendered the pod's first command into its environment, ffmpeg starts
before even that (`worker.launch`), and only the task's own command is kept."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .conftest import Media

import pytest

from mediaplane.core import commands
from mediaplane.core.tasks import WorkerTask
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


RUNG: dict[str, Any] = {"name": "240p", "type": "video", "height": 240,
                        "videoBitrateKbps": 400}
RUNG_TASK: dict[str, Any] = {"type": "video", "variant": RUNG}


def launched_run(origin: str, tmp_path: Path, launch: str) -> tuple[dict[str, Any], str]:
    """The worker as `mediaplane-worker` runs it (`launch.start`, then `main.main`) with
    `launch` in MEDIAPLANE_LAUNCH. Every process it spawns is recorded with whether
    pydantic was loaded at that moment."""
    task = {**RUNG_TASK, "input_url": f"{origin}/clip.mp4",
            "output": {"url": f"{origin}/upload", "fields": {"policy": "p"},
                       "keyPrefix": f"t-abc/{ASSET}/240p/"}}
    scratch = tmp_path / "scratch"
    env = {"MEDIAPLANE_TASK": json.dumps(task), "MEDIAPLANE_LAUNCH": launch,
           "MEDIAPLANE_RESULT_PATH": str(tmp_path / "result"),
           "MEDIAPLANE_SCRATCH": str(scratch)}
    code = textwrap.dedent(f"""
        import json, subprocess, sys

        spawned = []
        real_popen = subprocess.Popen

        class Popen(real_popen):
            def __init__(self, argv, **kwargs):
                spawned.append([argv[0], "pydantic" in sys.modules])
                super().__init__(argv, **kwargs)

        subprocess.Popen = Popen
        from mediaplane.worker import launch
        env = {env!r}
        launched = launch.start(env)
        from mediaplane.worker import main
        code = main.main(env, launched)
        print(json.dumps({{"exit": code, "spawned": spawned}}))
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["exit"] == 0, (tmp_path / "result").read_text()
    assert list(scratch.iterdir()) == [], "the scratch directory is left clean"
    report["result"] = json.loads((tmp_path / "result").read_text())
    return report, done.stderr


def first_launch(origin: str, **variant: object) -> str:
    task = WorkerTask.model_validate({**RUNG_TASK, "input_url": f"{origin}/clip.mp4",
                                      "variant": {**RUNG, **variant}})
    first = commands.first_command(task)
    assert first is not None
    return first.to_json()


def test_a_launched_ffmpeg_starts_before_pydantic_loads_and_is_the_one_that_encodes(
        origin: str, tmp_path: Path) -> None:
    report, stderr = launched_run(origin, tmp_path, first_launch(origin))
    assert report["spawned"] == [["ffmpeg", False]], "one ffmpeg, before pydantic was loaded"
    assert report["result"]["output"]["name"] == "240p"
    assert report["result"]["output"]["height"] == 240
    assert "adopting ffmpeg, started" in stderr


def test_a_launch_that_is_not_the_tasks_command_is_stopped_and_the_task_decides(
        origin: str, tmp_path: Path) -> None:
    """An operator of another version may render another command (here: 360p for a 240p
    task): it is stopped, what it wrote removed, and the task's own command runs."""
    report, stderr = launched_run(origin, tmp_path, first_launch(origin, height=360))
    assert report["spawned"] == [["ffmpeg", False], ["ffmpeg", True]]
    assert report["result"]["output"]["height"] == 240
    assert "not this task's first command" in stderr


@pytest.mark.parametrize("launch", [
    json.dumps({"dirs": ["out"], "argv": ["touch", "launched-marker"]}),
    json.dumps({"dirs": ["../../escape"], "argv": ["ffmpeg", "-version"]}),
    json.dumps(["ffmpeg", "-version"]),
    "not json",
])
def test_a_launch_that_is_not_an_ffmpeg_writing_in_its_scratch_is_never_started(
        origin: str, tmp_path: Path, launch: str) -> None:
    report, stderr = launched_run(origin, tmp_path, launch)
    assert report["spawned"] == [["ffmpeg", True]], "only the task's own command ran"
    assert report["result"]["output"]["height"] == 240
    assert not (tmp_path / "launched-marker").exists()
    assert not (tmp_path / "escape").exists()
    assert "MEDIAPLANE_LAUNCH holds no ffmpeg command" in stderr


def test_a_launch_that_cannot_start_is_left_to_the_worker(tmp_path: Path) -> None:
    """No room for its scratch directory (here the scratch path is a file): nothing starts,
    nothing is left behind, and the worker meets the same problem and reports it."""
    from mediaplane.worker import launch

    blocked = tmp_path / "scratch"
    blocked.write_text("a file, not a directory")
    launch_json = json.dumps({"dirs": ["out"], "argv": ["ffmpeg", "-version"]})
    assert launch.start({"MEDIAPLANE_LAUNCH": launch_json,
                         "MEDIAPLANE_SCRATCH": str(blocked)}) is None
    assert blocked.read_text() == "a file, not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scratch"]


def test_the_worker_yields_to_its_launched_encode_and_not_to_its_own_commands(
        tmp_path: Path) -> None:
    """Once its launch runs, the worker's interpreter (and what it starts later) weighs
    less than the launched ffmpeg, which keeps the pod's weight. Without a launch the
    worker's own ffmpeg is the encode: nothing changes. In a child process, so the test's
    own priority is untouched."""
    code = textwrap.dedent(f"""
        import json, os, subprocess
        from mediaplane.worker import launch

        base = os.getpriority(os.PRIO_PROCESS, 0)
        launch.yield_to(None)
        unlaunched = os.getpriority(os.PRIO_PROCESS, 0)
        launched = launch.start({{"MEDIAPLANE_LAUNCH": json.dumps({{
            "dirs": ["out"], "argv": ["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                                      "testsrc=size=320x240:rate=25", "-t", "60", "-f",
                                      "null", "-"]}}),
            "MEDIAPLANE_SCRATCH": {str(tmp_path / "scratch")!r}}})
        assert launched is not None
        launch.yield_to(launched)
        later = subprocess.run(["sh", "-c", "cut -d' ' -f19 /proc/self/stat"],
                               capture_output=True, text=True, check=True)
        report = {{"base": base, "unlaunched": unlaunched,
                   "worker": os.getpriority(os.PRIO_PROCESS, 0),
                   "ffmpeg": os.getpriority(os.PRIO_PROCESS, launched.proc.pid),
                   "ffmpeg_running": launched.proc.poll() is None,
                   "started_later": int(later.stdout)}}
        launched.discard()
        print(json.dumps(report))
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    base = report["base"]
    assert report["unlaunched"] == base, "no launch: the worker's own ffmpeg keeps the weight"
    assert report["ffmpeg_running"]
    assert report["ffmpeg"] == base, "the launched encode keeps the pod's weight"
    expected = min(19, base + 5)
    assert report["worker"] == expected
    assert report["started_later"] == expected, "a command the worker starts later inherits it"
    assert not (tmp_path / "scratch").exists() or not any((tmp_path / "scratch").iterdir())
