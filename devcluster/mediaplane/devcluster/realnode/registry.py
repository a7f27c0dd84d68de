"""The local image registry (distribution v3, built from the Go module proxy).

Its storage is a cache (`~/.cache/mediaplane/registry/storage`) that outlives the process
serving it: `make images` serves it on 127.0.0.1 while it pushes; a real node serves it on
the host's end of the node link (its containerd lives in the node's network namespace,
where 127.0.0.1 is the node itself), and image builds during that node's life push there.
Plain HTTP, on addresses only this machine reaches.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from mediaplane.devcluster.binaries import cache_dir

MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
))


def storage_dir() -> Path:
    return cache_dir() / "registry" / "storage"


def config(address: str) -> dict[str, Any]:
    return {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage_dir())},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": address, "secret": secrets.token_hex(16)},
    }


def write_config(path: Path, address: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    storage_dir().mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config(address)))
    return path


def argv(registry: Path, config_path: Path) -> list[str]:
    return [str(registry), "serve", str(config_path)]


def env() -> dict[str, str]:
    # distribution v3 exports traces over OTLP unless told not to.
    return {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}


@dataclass(frozen=True)
class ImageInfo:
    reference: str
    digest: str
    compressed_bytes: int
    layers: int


class RegistryClient:
    """Just enough of the distribution API to read what was pushed."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/v2/", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def manifest(self, repository: str, reference: str) -> tuple[str, dict[str, Any]] | None:
        response = httpx.get(f"{self.base_url}/v2/{repository}/manifests/{reference}",
                             headers={"Accept": MANIFEST_TYPES}, timeout=10.0)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"], json.loads(response.content)

    def _image_manifests(self, repository: str, reference: str) -> Iterator[dict[str, Any]]:
        found = self.manifest(repository, reference)
        if found is None:
            return
        _, doc = found
        if "manifests" in doc:  # an index: the linux/amd64 image (attestations have no platform)
            for entry in doc["manifests"]:
                platform = entry.get("platform") or {}
                if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                    inner = self.manifest(repository, entry["digest"])
                    if inner is not None:
                        yield inner[1]
            return
        yield doc

    def info(self, repository: str, tag: str) -> ImageInfo | None:
        found = self.manifest(repository, tag)
        if found is None:
            return None
        digest = found[0]
        for doc in self._image_manifests(repository, tag):
            layers = doc.get("layers") or []
            size = sum(int(layer["size"]) for layer in layers) + int(doc["config"]["size"])
            return ImageInfo(f"{repository}:{tag}", digest, size, len(layers))
        return None

    def layer_digests(self, repository: str, tag: str) -> list[str]:
        return [layer["digest"] for doc in self._image_manifests(repository, tag)
                for layer in doc.get("layers") or []]


def blob_path(digest: str) -> Path:
    """Where the filesystem driver keeps a blob (read directly to measure it unpacked)."""
    algorithm, hexdigest = digest.split(":", 1)
    return (storage_dir() / "docker" / "registry" / "v2" / "blobs" / algorithm / hexdigest[:2]
            / hexdigest / "data")
