"""Reading a dev cluster's state dir from outside the process that runs it.

Cheap to import (no client libraries): the CLI's `dev env` / `dev down` and test
fixtures use it to find a cluster someone else started.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path


def default_state_dir() -> Path:
    explicit = os.environ.get("MEDIAPLANE_DEV_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mediaplane" / "dev"


def is_running(state_dir: Path) -> bool:
    """True while a DevCluster holds the state dir's lock (the lock dies with it)."""
    lock = state_dir / "lock"
    if not lock.exists():
        return False
    with lock.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def read_env(state_dir: Path) -> dict[str, str] | None:
    """The running cluster's `env()`, or None when it is not (fully) up."""
    path = state_dir / "env.json"
    if not is_running(state_dir) or not path.exists():
        return None
    data = json.loads(path.read_text())
    return {str(k): str(v) for k, v in data.items()}
