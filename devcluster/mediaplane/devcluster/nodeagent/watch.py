"""List-then-watch over all pods, relisting whenever the watch cannot resume.

A watch resumes from the last resourceVersion seen (bookmarks keep it fresh); a 410 Gone
or any error means events may have been missed, so the whole list is handled again. The
handler must therefore be idempotent, which the agent's bookkeeping makes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from mediaplane.devcluster.nodeagent.api import Kube

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], None]
SYNC = "SYNC"  # an object from a (re)list, not a watch event


class _RelistError(Exception):
    pass


async def watch_pods(kube: Kube, handle: Handler, *, timeout_seconds: int = 60) -> None:
    """Call `handle(event_type, pod)` for every pod and change, forever."""
    while True:
        try:
            pods, version = await kube.list_pods()
            for pod in pods:
                handle(SYNC, pod)
            while True:
                version = await _watch_once(kube, handle, version, timeout_seconds)
        except asyncio.CancelledError:
            raise
        except _RelistError as why:
            log.info("relisting pods: %s", why)
        except Exception as err:
            log.warning("pod watch failed, relisting in 2s: %s", err)
            await asyncio.sleep(2)


async def _watch_once(kube: Kube, handle: Handler, version: str, timeout_seconds: int) -> str:
    async for event in kube.watch_pods(version, timeout_seconds):
        kind = str(event.get("type", ""))
        obj = event.get("object") or {}
        if kind == "ERROR":
            raise _RelistError(f"{obj.get('code')} {obj.get('reason')}: {obj.get('message')}")
        version = str(obj.get("metadata", {}).get("resourceVersion") or version)
        if kind != "BOOKMARK":
            handle(kind, obj)
    return version
