"""Real parts for worker tests: a SeaweedFS S3 server, generated media, a worker runner.

Nothing is mocked: media comes from ffmpeg's lavfi sources, S3 is a real SeaweedFS that
enforces SigV4 presigned URLs and POST policies, and the worker runs as a subprocess with
the same environment contract as in its pod. The helpers are plain functions so other
test suites (the operator's) can reuse them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mediaplane.core.settings import S3Settings
from mediaplane.core.storage import Storage
from mediaplane.core.tasks import PresignedPost, WorkerTask
from mediaplane.devcluster import seaweed

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_s3 import S3Client

BUCKET = "mediaplane-test"


# --- S3 (SeaweedFS) -------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweed.Standalone]:
    """The dev cluster's SeaweedFS, on its own: these tests need S3, not Kubernetes."""
    server = seaweed.start_standalone(tmp_path_factory.mktemp("seaweedfs"), bucket=BUCKET)
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class S3Bucket:
    """One bucket of the test server. Presigning goes through the operator's own code
    (`mediaplane.core.storage.Storage`), so workers get exactly what the operator hands out."""

    client: S3Client
    storage: Storage
    name: str

    def put_source(self, key: str, path: Path, content_type: str) -> str:
        """Store `path` as an uploaded source; answer a presigned GET for it."""
        self.client.put_object(Bucket=self.name, Key=key, Body=path.read_bytes(),
                               ContentType=content_type)
        return self.presign_get(key)

    def presign_get(self, key: str, expires: int = 900) -> str:
        return self.storage.presign_get(key, expires)

    def presign_output(self, prefix: str, expires: int = 900,
                       max_bytes: int = 1 << 30) -> PresignedPost:
        """A worker's output policy: any key under `prefix`, any Content-Type."""
        return self.storage.presign_post_prefix(prefix, expires, max_bytes)

    def list_keys(self, prefix: str) -> dict[str, int]:
        listing = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return {o["Key"]: o["Size"] for o in listing.get("Contents", [])}

    def fetch_all(self, prefix: str, dest: Path) -> dict[str, str]:
        """Download every object under `prefix` into `dest`; answers name -> Content-Type."""
        dest.mkdir(parents=True, exist_ok=True)
        types = {}
        for key in self.list_keys(prefix):
            name = key[len(prefix):]
            obj = self.client.get_object(Bucket=self.name, Key=key)
            (dest / name).parent.mkdir(parents=True, exist_ok=True)  # chunks/<index>.json
            (dest / name).write_bytes(obj["Body"].read())
            types[name] = obj["ContentType"]
        return types


@pytest.fixture(scope="session")
def s3_bucket(s3_server: seaweed.Standalone) -> S3Bucket:
    """Presigning goes through the operator's own Storage, with the server's credentials."""
    creds = s3_server.credentials
    settings = S3Settings(endpoint=s3_server.endpoint, bucket=BUCKET, region=seaweed.REGION)
    storage = Storage(settings, (creds.access_key, creds.secret_key))
    return S3Bucket(client=storage.client, storage=storage, name=BUCKET)


# --- the worker -----------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerRun:
    returncode: int
    result_text: str
    stderr: str
    seconds: float

    @property
    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.result_text)
        return data


def run_worker_process(task: WorkerTask | dict[str, Any], workdir: Path,
                       timeout: float = 300, extra_env: dict[str, str] | None = None
                       ) -> WorkerRun:
    """Run one task in a subprocess with the pod's environment contract (the task JSON as
    the operator's Job builder writes it)."""
    argv, env = worker_command(task, workdir, extra_env)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    seconds = time.perf_counter() - started
    result_path = workdir / "termination-log"
    text = result_path.read_text() if result_path.exists() else ""
    return WorkerRun(done.returncode, text, done.stderr, seconds)


def worker_command(task: WorkerTask | dict[str, Any], workdir: Path,
                   extra_env: dict[str, str] | None = None
                   ) -> tuple[list[str], dict[str, str]]:
    """The worker's argv and environment as its pod has them, its files in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAPLANE_")}
    raw = (task.model_dump_json(exclude_none=True) if isinstance(task, WorkerTask)
           else json.dumps(task))
    env |= {"MEDIAPLANE_TASK": raw,
            "MEDIAPLANE_RESULT_PATH": str(workdir / "termination-log"),
            "MEDIAPLANE_SCRATCH": str(workdir / "scratch")} | (extra_env or {})
    script = shutil.which("mediaplane-worker", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "mediaplane.worker.main"], env


RunWorker = Callable[..., WorkerRun]


@pytest.fixture(scope="session")
def run_worker() -> RunWorker:
    """`run_worker(task, workdir)`: the worker as a subprocess, its result read back."""
    return run_worker_process


# --- media ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Media:
    clip: Path  # 4 s, 640x360, 25 fps, H.264 + AAC 48 kHz stereo, MP4 (moov at the end)
    png: Path  # 640x360 still
    jpeg_exif: Path  # 320x240 JPEG with EXIF (Make=SecretCam, Orientation=6: shown 240x320)
    apng: Path  # animated PNG: PNG magic, but not a still
    wav: Path  # 3 s stereo 44.1 kHz
    mp3: Path  # 3 s, with an ID3v2 tag
    m4a: Path  # AAC in MP4, audio only

    @staticmethod
    def sha256(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True, timeout=120)


def exif_segment(make: bytes = b"SecretCam", orientation: int = 6) -> bytes:
    """A JPEG APP1 EXIF segment (little-endian TIFF, IFD0 with Make and Orientation)."""
    make += b"\0"
    ifd_offset, count = 8, 2
    data_offset = ifd_offset + 2 + count * 12 + 4
    entries = (struct.pack("<HHII", 0x010F, 2, len(make), data_offset)
               + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0))
    tiff = (b"II*\0" + struct.pack("<I", ifd_offset) + struct.pack("<H", count) + entries
            + struct.pack("<I", 0) + make)
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def make_media(root: Path) -> Media:
    root.mkdir(parents=True, exist_ok=True)
    media = Media(clip=root / "clip.mp4", png=root / "still.png", jpeg_exif=root / "photo.jpg",
                  apng=root / "anim.apng", wav=root / "tone.wav", mp3=root / "tone.mp3",
                  m4a=root / "tone.m4a")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=4",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
           "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-shortest", str(media.clip))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360", "-frames:v", "1", str(media.png))
    plain = root / "plain.jpg"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", "-q:v", "3",
           "-f", "image2", str(plain))
    data = plain.read_bytes()
    media.jpeg_exif.write_bytes(data[:2] + exif_segment() + data[2:])
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=1", "-f", "apng",
           "-plays", "0", str(media.apng))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=660:sample_rate=44100:duration=3",
           "-ac", "2", str(media.wav))
    ffmpeg("-i", str(media.wav), "-c:a", "libmp3lame", "-b:a", "128k",
           "-metadata", "title=tone", str(media.mp3))
    ffmpeg("-i", str(media.wav), "-c:a", "aac", str(media.m4a))
    return media


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    # Not a skip: without ffmpeg the set-up is broken, and CI must say so.
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        raise RuntimeError("ffmpeg/ffprobe are not on PATH: run `make setup`")
    return make_media(tmp_path_factory.mktemp("media"))


def ffprobe_report(path: Path, *extra: str) -> dict[str, Any]:
    done = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", *extra,
                           "-of", "json", str(path)], capture_output=True, check=True,
                          timeout=60)
    data: dict[str, Any] = json.loads(done.stdout)
    return data


FfprobeJson = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def ffprobe_json() -> FfprobeJson:
    """`ffprobe_json(path, *extra_args)`: format and streams as JSON."""
    return ffprobe_report
