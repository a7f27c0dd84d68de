"""One way for every process to log: JSON lines on stderr through structlog.

Records from the standard library's loggers (ours, uvicorn's, kopf's, botocore's) go
through the same processors, so every line is one JSON object with `timestamp`, `level`,
`logger`, `service` and `event`, plus whatever is bound in the context: the API binds
`request_id` (and `asset_id` on an asset's routes) for each request, the operator
`asset_id` for each handler, the worker `asset_id` and `task` for its whole run.

A worker pod lives a few seconds and its start-up is on the path to playable: importing
structlog costs it 60 ms of CPU (asyncio, through structlog.stdlib) and twice that where
`rich` is installed (structlog.dev and its tracebacks use it). So the worker writes the
same lines with the standard library alone (`configure_plain`), and structlog is imported
only by `configure` and the binding helpers of the long-lived services.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, MutableMapping

    from structlog.typing import EventDict, Processor, WrappedLogger

ASSET_ID = re.compile(r"\bmda[_-]([0-9a-hjkmnp-tv-z]{26})\b")


def asset_id_in(text: str) -> str | None:
    """The asset id (`mda_…`) named in a path, key, URL or object name, if any."""
    found = ASSET_ID.search(text)
    return f"mda_{found.group(1)}" if found else None


def _service(name: str) -> Processor:
    def add(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event.setdefault("service", name)
        return event

    return add


def _asset_from_kopf(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """kopf's per-object lines carry `k8s_ref`; a MediaAsset's or its children's name says
    the asset id."""
    ref = event.get("k8s_ref")
    if "asset_id" not in event and isinstance(ref, dict):
        found = asset_id_in(str(ref.get("name", "")))
        if found:
            event["asset_id"] = found
    return event


# kopf passes these as `extra` on its per-object lines: its whole settings object (2.5 KB
# of repr on every "Handler ... succeeded") and a flag for its own event poster.
KOPF_INTERNALS = ("settings", "k8s_skip")


def _drop_kopf_internals(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key in KOPF_INTERNALS:
        event.pop(key, None)
    return event


def configure(service: str, level: str | int = "INFO") -> None:
    """Routes every logger of the process to JSON lines on stderr."""
    import structlog

    global _plain
    _plain = None
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        _drop_kopf_internals,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _service(service),
        _asset_from_kopf,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(default=str)])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "kopf"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True


class JsonLines(logging.Formatter):
    """The line `configure` writes for a standard-library record, made without structlog:
    `event`, `logger`, `level`, `timestamp` (ISO 8601, UTC), `service`, the fields bound
    with `bind`, and `exception` when there is one."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self.fields: dict[str, Any] = {}

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        event: dict[str, Any] = {
            "event": record.getMessage(), "logger": record.name,
            "level": record.levelname.lower(),
            "timestamp": f"{stamp}.{int(record.msecs * 1000):06d}Z",
            "service": self.service, **self.fields}
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


_plain: JsonLines | None = None


def configure_plain(service: str, level: str | int = "INFO") -> None:
    """`configure` for a short-lived single-task process (the worker): the same lines with
    the standard library alone; `bind` then adds its fields to every later line."""
    global _plain
    _plain = JsonLines(service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_plain)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level if isinstance(level, int) else level.upper())


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Binds `values` (None left out) to every line logged inside the block."""
    import structlog

    present = {k: v for k, v in values.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**present):
        yield


def bind(**values: Any) -> None:
    """Binds `values` (None left out) to every later line of this context (the process's,
    after `configure_plain`)."""
    present = {k: v for k, v in values.items() if v is not None}
    if _plain is not None:
        _plain.fields.update(present)
        return
    import structlog

    structlog.contextvars.bind_contextvars(**present)


def context() -> MutableMapping[str, Any]:
    if _plain is not None:
        return _plain.fields
    import structlog

    return structlog.contextvars.get_contextvars()
