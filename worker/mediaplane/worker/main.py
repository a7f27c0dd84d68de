"""Entry point of one worker pod: read the task, do it, leave the result, exit.

Exit 0 means "a result was written" (a quarantine verdict included); anything else is an
infrastructure failure the Job controller retries, with a one-line cause left in the
termination message. Heavy imports wait until the task type is known.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from mediaplane.core import logs
from mediaplane.core.tasks import (
    LAUNCH_ENV,
    MAX_RESULT_BYTES,
    RESULT_PATH_ENV,
    SCRATCH_ENV,
    TASK_ENV,
    GenerationOutcome,
    ProbeOutcome,
    SpeechChunkOutcome,
    SpeechPlanOutcome,
    TaskType,
    VariantChunkOutcome,
    VariantOutcome,
    WorkerTask,
)
from mediaplane.worker.errors import (
    EXIT_INTERNAL,
    EXIT_INVALID_TASK,
    EXIT_TERMINATED,
    InfraError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from types import FrameType

    from mediaplane.worker.launch import Launched

log = logging.getLogger("mediaplane.worker")

DEFAULT_RESULT_PATH = "/dev/termination-log"


def parse_task(environ: Mapping[str, str]) -> WorkerTask:
    raw = environ.get(TASK_ENV)
    if not raw:
        raise InfraError("InvalidTask", f"{TASK_ENV} is not set", exit_code=EXIT_INVALID_TASK)
    try:
        return WorkerTask.model_validate_json(raw)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        first = str(exc).splitlines()[:3]
        raise InfraError("InvalidTask", " ".join(first),
                         exit_code=EXIT_INVALID_TASK) from exc


Outcome = (ProbeOutcome | VariantOutcome | VariantChunkOutcome | SpeechPlanOutcome
           | SpeechChunkOutcome | GenerationOutcome)


def render(result: Outcome) -> str:
    """JSON within the termination-message cap; only a quarantine message can be long."""
    text = result.model_dump_json(exclude_none=True)
    if isinstance(result, ProbeOutcome) and result.message:
        message = result.message
        while len(text.encode()) > MAX_RESULT_BYTES and message:
            message = message[: len(message) // 2]
            text = result.model_copy(update={"message": message + "…"}).model_dump_json(
                exclude_none=True)
    if len(text.encode()) > MAX_RESULT_BYTES:
        raise InfraError("ResultTooLarge", f"{len(text.encode())} bytes")
    return text


def write_result(path: Path, text: str) -> None:
    data = text.encode()[:MAX_RESULT_BYTES]
    with path.open("wb") as handle:
        handle.write(data)


@contextmanager
def scratch_dir(environ: Mapping[str, str], launched: Launched | None = None
                ) -> Iterator[Path]:
    """A fresh directory inside the pod's scratch volume (or a tempdir), always removed:
    the launched ffmpeg's, when the worker adopts it."""
    if launched is not None:
        try:
            yield launched.scratch
        finally:
            launched.discard()
        return
    base = environ.get(SCRATCH_ENV) or None
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="task-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def adoptable(launched: Launched | None, task: WorkerTask,
              environ: Mapping[str, str]) -> Launched | None:
    """The launched ffmpeg, if it is exactly `task`'s first command; anything else is
    stopped and its files removed (an operator of another version renders another command:
    the task decides)."""
    if launched is None:
        if environ.get(LAUNCH_ENV):
            log.warning("%s holds no ffmpeg command and plain directory names: "
                        "not started", LAUNCH_ENV)
        return None
    from mediaplane.core import commands  # ffmpeg-python: only where there is a launch

    first = commands.first_command(task)
    if first is not None and (launched.argv, launched.dirs) == (first.argv, first.dirs):
        log.info("adopting ffmpeg, started %.3f s before the task was read",
                 time.monotonic() - launched.started)
        return launched
    log.warning("the launched command is not this task's first command: stopped, "
                "the task's own runs instead")
    launched.discard()
    return None


def run_task(task: WorkerTask, scratch: Path,
             environ: Mapping[str, str] | None = None,
             launched: Launched | None = None) -> Outcome:
    if task.type is TaskType.GENERATE:
        from mediaplane.worker.generate import run_generation

        return run_generation(task, scratch)
    if task.type is TaskType.PROBE:
        from mediaplane.worker.probe import run_probe

        return run_probe(task, scratch, launched)
    if task.type in (TaskType.SPEECH_PLAN, TaskType.SPEECH_CHUNK):
        from mediaplane.worker.speech import run_speech

        return run_speech(task, scratch, os.environ if environ is None else environ)
    from mediaplane.worker.transcode import run_variant

    return run_variant(task, scratch, os.environ if environ is None else environ, launched)


def asset_of(task: WorkerTask) -> str | None:
    """The asset id in the object keys of the task (its input URL, its output's key)."""
    places = [task.input_url]
    if task.output is not None:
        places += [task.output.key_prefix, *task.output.fields.values()]
    for place in places:
        found = logs.asset_id_in(urllib.parse.unquote(place or ""))
        if found:
            return found
    return None


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise InfraError("Terminated", "stopped by SIGTERM", exit_code=EXIT_TERMINATED)


def main(environ: Mapping[str, str] | None = None, launched: Launched | None = None) -> int:
    """Runs the task in `environ`; `launched`: its first ffmpeg, started before the worker
    was loaded (`launch`), which it adopts or stops."""
    env = os.environ if environ is None else environ
    # httpx imports its command-line tool (click, pygments, rich: 100 ms) whenever those are
    # installed. The worker image has none of them, a developer's virtualenv has them all:
    # without this, workers run from it (the dev cluster's) would start like no real one.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    logs.configure_plain("worker", logging.INFO)
    # httpx logs every request with its URL: a presigned GET carries its signature.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _on_sigterm)
    result_path = Path(env.get(RESULT_PATH_ENV) or DEFAULT_RESULT_PATH)
    try:
        task = parse_task(env)
        # The task names no asset, but every key it may touch is under the asset's prefix.
        logs.bind(asset_id=asset_of(task), task=task.type.value,
                  variant=task.variant.name if task.variant else None)
        log.info("task %s%s", task.type, f" {task.variant.name}" if task.variant else "")
        adopted, launched = adoptable(launched, task, env), None
        with scratch_dir(env, adopted) as scratch:
            result = run_task(task, scratch, env, adopted)
        text = render(result)
    except InfraError as exc:
        log.error("%s", exc)
        write_result(result_path, str(exc))
        return exc.exit_code
    except Exception as exc:
        log.exception("unexpected failure")
        write_result(result_path, f"Internal: {type(exc).__name__}: {exc}")
        return EXIT_INTERNAL
    finally:
        if launched is not None:  # the task could not be read: stopped, its files removed
            launched.discard()
    write_result(result_path, text)
    log.info("result: %s", text)
    return 0


def log_cpu() -> None:
    """The pod's CPU split between this interpreter (its imports, checks, uploads) and the
    commands it ran and waited for (ffmpeg, ffprobe): what a pod costs beyond its encodes
    (`bench.pipeline` reads it from the log)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    commands = resource.getrusage(resource.RUSAGE_CHILDREN)
    log.info("cpu: worker %.3f s, its commands %.3f s", own.ru_utime + own.ru_stime,
             commands.ru_utime + commands.ru_stime)


def run(launched: Launched | None = None) -> None:
    """`main` (for the `mediaplane-worker` command, `launch.run`), then an exit that skips
    the interpreter's teardown. Once the result is written nothing is left to finalize
    (ffmpeg waited for, the upload's threads joined, the scratch removed), and the teardown
    of pydantic's, httpx's and TLS's modules took 45 ms, on every rendition's way to being
    published. An exception escaping `main` still exits the usual way, with its traceback."""
    code = main(launched=launched)
    log_cpu()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
