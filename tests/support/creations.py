"""Counting creations by UID from watches started before a batch, not from the final
state: a TranscodeJob or Job deleted and made again under the same name shows as two UIDs
for one name, even if only one object is left at the end.

One thread per kind lists, then watches, the namespace; when the watch breaks (the API
server restarts) it lists and watches again. An object created and deleted entirely
within such a gap is not seen; the faults here delete nothing, so nothing hides there.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch

from mediaplane.core import names


class CreationWatch:
    def __init__(self, api: k8s.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.uids: dict[str, set[str]] = defaultdict(set)  # "Kind/name" -> uids seen
        self._stop = threading.Event()
        self._lock = threading.Lock()
        custom, batch = k8s.CustomObjectsApi(api), k8s.BatchV1Api(api)
        self._threads = [
            threading.Thread(target=self._follow, daemon=True, args=(
                "TranscodeJob", lambda **kw: custom.list_namespaced_custom_object(
                    names.GROUP, names.VERSION, namespace, names.JOB_PLURAL, **kw), True)),
            threading.Thread(target=self._follow, daemon=True, args=(
                "Job", lambda **kw: batch.list_namespaced_job(namespace, **kw), False)),
        ]
        self.ready = threading.Barrier(len(self._threads) + 1)

    def __enter__(self) -> CreationWatch:
        for thread in self._threads:
            thread.start()
        self.ready.wait(timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _record(self, kind: str, obj: Any, raw: bool) -> None:
        meta = obj["metadata"] if raw else obj.metadata
        name, uid = (meta["name"], meta["uid"]) if raw else (meta.name, meta.uid)
        with self._lock:
            self.uids[f"{kind}/{name}"].add(uid)

    def _follow(self, kind: str, lister: Callable[..., Any], raw: bool) -> None:
        first = True
        while not self._stop.is_set():
            try:
                listing = lister()
                items = listing["items"] if raw else listing.items
                for obj in items:
                    self._record(kind, obj, raw)
                version = (listing["metadata"]["resourceVersion"] if raw
                           else listing.metadata.resource_version)
                if first:
                    first = False
                    self.ready.wait(timeout=60)
                for event in watch.Watch().stream(lister, resource_version=version,
                                                  timeout_seconds=20):
                    if self._stop.is_set():
                        return
                    if event["type"] == "ADDED":
                        self._record(kind, event["object"], raw)
            except Exception:  # the API server is away: list again when it is back
                time.sleep(0.5)

    def duplicates(self) -> dict[str, set[str]]:
        with self._lock:
            return {name: set(uids) for name, uids in self.uids.items() if len(uids) > 1}

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for name in self.uids if name.startswith(kind + "/"))
