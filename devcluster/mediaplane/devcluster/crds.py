"""Installing the project's CRDs and admission policies into the dev cluster.

The same files a Helm chart or `kubectl apply` would install, applied server-side with
our built kubectl: the dev cluster runs exactly what a real cluster runs.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import yaml


def default_crds_dir() -> Path | None:
    """The repo's `crds/`, else the copy packaged at `mediaplane/devcluster/crds`."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[2] / "crds", here / "crds"):
        if candidate.is_dir():
            return candidate
    return None


def manifest_files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file()
    )


def crd_names(files: list[Path]) -> list[str]:
    names = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if _is_crd(doc):
                names.append(str(doc["metadata"]["name"]))
    return names


def _is_crd(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"


def _kubectl(kubectl: Path, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def apply(kubectl: Path, kubeconfig: Path, directory: Path | None, timeout: float = 90) -> None:
    """Server-side apply every manifest in `directory`, then wait for CRDs to be Established.

    Applying is retried: a policy binding or a custom resource can briefly race the
    CRD or policy it refers to.
    """
    if directory is None or not directory.is_dir():
        return
    files = manifest_files(directory)
    if not files:
        return
    deadline = time.monotonic() + timeout
    args = ["apply", "--server-side", "--force-conflicts", "--field-manager=mediaplane-dev"]
    for path in files:
        args += ["-f", str(path)]
    while True:
        done = _kubectl(kubectl, kubeconfig, *args)
        if done.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"kubectl apply of {directory} failed:\n{done.stderr}")
        time.sleep(1)
    names = crd_names(files)
    if names:
        remaining = max(5, int(deadline - time.monotonic()))
        done = _kubectl(
            kubectl,
            kubeconfig,
            "wait",
            "--for=condition=Established",
            f"--timeout={remaining}s",
            *(f"crd/{name}" for name in names),
        )
        if done.returncode != 0:
            raise RuntimeError(f"CRDs not Established: {names}\n{done.stderr}")
