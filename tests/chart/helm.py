"""Running helm and kubectl for the chart tests, and reading what they render."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mediaplane.devcluster import binaries

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mediaplane"
VALUE_SETS: dict[str, list[Path]] = {
    "defaults": [],
    "ingress-monitoring-irsa": [CHART / "ci" / "ingress-monitoring-irsa-values.yaml"],
    "existing-secrets-ha": [CHART / "ci" / "existing-secrets-ha-values.yaml"],
    "no-netpol-custom-ladder": [CHART / "ci" / "no-netpol-custom-ladder-values.yaml"],
    "ai-image-service": [CHART / "ci" / "ai-image-service-values.yaml"],
}


def helm_binary() -> Path:
    helm = binaries.binaries().helm
    if not binaries.reports_version(helm, binaries.HELM_VERSION):
        raise RuntimeError(f"helm {binaries.HELM_VERSION} is not built at {helm}: run make setup")
    return helm


def run(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 180,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False,
                          env=dict(env) if env is not None else None)


def helm(*args: str, env: Mapping[str, str] | None = None,
         timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return run([str(helm_binary()), *args], env=env, timeout=timeout)


def value_args(files: Sequence[Path] = (), sets: Mapping[str, str] | None = None) -> list[str]:
    args: list[str] = []
    for path in files:
        args += ["-f", str(path)]
    for key, value in (sets or {}).items():
        args += ["--set", f"{key}={value}"]
    return args


def template(files: Sequence[Path] = (), sets: Mapping[str, str] | None = None,
             namespace: str = "mediaplane", release: str = "mediaplane") -> str:
    done = helm("template", release, str(CHART), "--namespace", namespace,
                *value_args(files, sets))
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass(frozen=True)
class Rendered:
    docs: list[dict[str, Any]]

    @classmethod
    def of(cls, text: str) -> Rendered:
        return cls([d for d in yaml.safe_load_all(text) if d])

    def kinds(self) -> list[str]:
        return sorted(d["kind"] for d in self.docs)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.all(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
        return found[0]


def container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """name → value, or name → the valueFrom mapping."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment)["env"]}
