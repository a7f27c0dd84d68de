"""A worker that misbehaves on purpose, for the fault suite (test code, never shipped).

The operator runs it as its worker command: `python faultyworker.py --hang storyboard
--fail poster -- <the real worker>`. A task for a variant named after --hang sleeps until
the kubelet's deadline kills it; one named after --fail leaves an error in its
termination message and exits 5 (what a failed ffmpeg does); every other task is handed
to the real worker. It reads nothing but its pod's own environment, as a worker does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

TASK_ENV = "MEDIAPLANE_TASK"
RESULT_PATH_ENV = "MEDIAPLANE_RESULT_PATH"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hang", action="append", default=[])
    parser.add_argument("--fail", action="append", default=[])
    parser.add_argument("worker", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    worker = [part for part in args.worker if part != "--"]
    task = json.loads(os.environ.get(TASK_ENV, "{}"))
    variant = (task.get("variant") or {}).get("name")
    if variant in args.hang:
        while True:  # until activeDeadlineSeconds: the node agent kills the pod
            time.sleep(60)
    if variant in args.fail:
        Path(os.environ.get(RESULT_PATH_ENV, "/dev/termination-log")).write_text(
            f"TranscodeFailed: injected failure of {variant} (always fails)")
        sys.exit(5)
    os.execv(worker[0], worker)  # noqa: S606 (the real worker, argv as the operator gave)


if __name__ == "__main__":
    main()
