"""A watch-fed cache of every MediaAsset, so reads never wait on the API server.

The API reads assets on every request (GET, stream links, variants, captions); the
operator changes them a few times in their life. As in client-go informers, one
list-then-watch keeps a local copy: reads are dictionary lookups, the API server sees one
watch instead of a GET per request. Our own writes are put in at once (read-your-writes);
a miss falls through to the API server, so an asset made elsewhere a moment ago is found.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import logging
from collections.abc import Callable, Iterator

from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from mediaplane.api.metrics import ASSET_LISTS
from mediaplane.core import names
from mediaplane.core.resources import MediaAsset

log = logging.getLogger("mediaplane.api.informer")
LIST_PAGE = 500
WATCH_SECONDS = 300


def keep_out_of_full_collections() -> None:
    """Moves every object alive now (the listed assets among them) out of the cyclic
    collector's reach. With 10,000 assets cached, a full collection walked 800,000 objects
    for about 0.5 s, holding up whatever requests were in flight: the list bench's p99 was
    337 ms against a p50 of 22 ms. The assets hold no reference cycles, so reference
    counting still frees each one that a watch event replaces. What is garbage now is
    collected first, so that none of it is kept for good: that one pass happens at the
    first sync, before the API reports ready, and again only when the watch breaks and the
    cache is listed anew."""
    gc.collect()
    gc.freeze()


def _version(asset: MediaAsset) -> int:
    value = asset.metadata.resource_version or "0"
    return int(value) if value.isdigit() else 0


class AssetInformer:
    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self._items: dict[tuple[str, str], MediaAsset] = {}
        # Per namespace, the names in order: lists page through them by name (keyset).
        self._names: dict[str, list[str]] = {}
        self._tombstones: dict[tuple[str, str], int] = {}
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Called with each asset the list or the watch delivers (not our own writes).
        self.listeners: list[Callable[[MediaAsset], None]] = []

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="asset-informer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def get(self, namespace: str, name: str) -> MediaAsset | None:
        return self._items.get((namespace, name))

    def after(self, namespace: str, name: str | None) -> Iterator[MediaAsset]:
        """The namespace's assets in name order, from the first name past `name`."""
        names_ = self._names.get(namespace, [])
        start = bisect.bisect_right(names_, name) if name else 0
        for index in range(start, len(names_)):
            found = self._items.get((namespace, names_[index]))
            if found is not None:
                yield found

    def observe(self, asset: MediaAsset) -> None:
        """Keeps `asset` unless a newer version (or its deletion) is already known."""
        key = (asset.tenant, asset.name)
        version = _version(asset)
        if self._tombstones.get(key, -1) >= version:
            return
        current = self._items.get(key)
        if current is None:
            bisect.insort(self._names.setdefault(asset.tenant, []), asset.name)
        if current is None or _version(current) <= version:
            self._items[key] = asset

    def _notify(self, asset: MediaAsset) -> None:
        for listener in self.listeners:
            try:
                listener(asset)
            except Exception:  # a listener's bug must not stop the cache
                log.exception("asset listener failed")

    def forget(self, asset: MediaAsset) -> None:
        key = (asset.tenant, asset.name)
        if self._items.pop(key, None) is not None:
            names_ = self._names.get(asset.tenant, [])
            index = bisect.bisect_left(names_, asset.name)
            if index < len(names_) and names_[index] == asset.name:
                del names_[index]
        self._tombstones[key] = _version(asset)
        if len(self._tombstones) > 100_000:
            self._tombstones.clear()

    async def _run(self) -> None:
        while True:
            try:
                version = await self._list()
                keep_out_of_full_collections()
                self.synced.set()
                await self._watch(version)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the API server restarts, a watch expires: relist
                log.warning("MediaAsset watch interrupted (%s); listing again", error)
                await asyncio.sleep(1.0)

    async def _list(self) -> str:
        items: dict[tuple[str, str], MediaAsset] = {}
        token = ""
        while True:
            page = await self.custom.list_cluster_custom_object(
                names.GROUP, names.VERSION, names.ASSET_PLURAL, limit=LIST_PAGE,
                _continue=token)
            for obj in page.get("items", []):
                asset = MediaAsset.model_validate(obj)
                items[(asset.tenant, asset.name)] = asset
            token = page.get("metadata", {}).get("continue") or ""
            if not token:
                self._items = items
                by_namespace: dict[str, list[str]] = {}
                for namespace, name in items:
                    by_namespace.setdefault(namespace, []).append(name)
                self._names = {ns: sorted(found) for ns, found in by_namespace.items()}
                for asset in items.values():
                    self._notify(asset)
                ASSET_LISTS.inc()
                return str(page["metadata"]["resourceVersion"])

    async def _watch(self, version: str) -> None:
        while True:
            stream = watch.Watch().stream(
                self.custom.list_cluster_custom_object, names.GROUP, names.VERSION,
                names.ASSET_PLURAL, resource_version=version, allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS)
            async for event in stream:
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    raise ApiException(status=obj.get("code", 500), reason=obj.get("message"))
                version = obj["metadata"]["resourceVersion"]
                if kind == "BOOKMARK":
                    continue
                asset = MediaAsset.model_validate(obj)
                if kind in ("ADDED", "MODIFIED"):
                    self.observe(asset)
                    self._notify(asset)
                elif kind == "DELETED":
                    self.forget(asset)
