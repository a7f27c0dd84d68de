"""What every handler needs, created once at operator start-up and kept in kopf's memo."""

from __future__ import annotations

import asyncio
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mediaplane.core.ai import CatalogFile
from mediaplane.core.settings import S3Settings
from mediaplane.core.storage import Storage
from mediaplane.operator.kube import Kube, OperatorKube
from mediaplane.operator.rest import KubeRest
from mediaplane.operator.settings import OperatorSettings

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mediaplane.core.ladder import Ladder
    from mediaplane.core.objects import ObjectStore


@dataclass
class Context:
    kube: OperatorKube
    storage: ObjectStore
    settings: OperatorSettings
    ladder: Ladder
    catalog: CatalogFile = field(default_factory=lambda: CatalogFile(None))
    # Events about one asset arrive from several watches (the asset, its TranscodeJobs);
    # one lock per asset keeps its reconciles from interleaving their status writes. The
    # table holds a lock only while someone holds or awaits it, so it never outgrows the
    # work in flight.
    _locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary)
    # Tenants' namespace annotations (auto-captions), with when they were read.
    annotations: dict[str, tuple[float, Mapping[str, str]]] = field(default_factory=dict)
    # Called with (namespace, name) when an asset has webhook events to deliver (the
    # dispatcher's queue once the operator runs; nothing in tests that do not deliver).
    notify: Callable[[str, str], None] = field(default=lambda namespace, name: None)

    # Reconciles of each asset waiting for its lock. Each reads the asset and its children
    # once it holds the lock, so a change already in the API server when one is waiting
    # will be seen by it: a burst of TranscodeJob status changes costs one more reconcile,
    # not one each (`reconcile_asset(..., coalesce=True)`).
    _waiting: Counter[str] = field(default_factory=Counter)

    # The status of each unfinished TranscodeJob as its asset last took it into account: an
    # event that changes only metadata (a label or an annotation someone added)
    # brings nothing new to the asset. Finished ones are dropped (a status that ended does
    # not change again), so this holds the work in flight, not every TranscodeJob.
    _tj_status: dict[str, str] = field(default_factory=dict)

    # TranscodeJobs ("namespace/name") whose Job the reconcile that creates them makes
    # (`reconcile.make_job_now`): their creation's watch event leaves the Job to it rather
    # than racing it to a conflict. Named before the creation, dropped once it is done.
    jobs_made_by_creator: set[str] = field(default_factory=set)

    def transcode_job_news(self, key: str, status: str, *, finished: bool) -> bool:
        """True unless `status` (the TranscodeJob's status as JSON) is the one last seen for
        `key`; remembers it while the TranscodeJob is unfinished."""
        old = self._tj_status.pop(key, None) if finished else self._tj_status.get(key)
        if not finished:
            self._tj_status[key] = status
        return old != status

    def transcode_job_gone(self, key: str) -> None:
        self._tj_status.pop(key, None)

    @property
    def transcode_jobs_tracked(self) -> int:
        return len(self._tj_status)

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        key = f"{namespace}/{name}"
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def reconcile_waiting(self, namespace: str, name: str) -> bool:
        """A reconcile of this asset is waiting for its lock (it has read nothing yet)."""
        return self._waiting[f"{namespace}/{name}"] > 0

    async def acquire(self, namespace: str, name: str) -> asyncio.Lock:
        """The asset's lock, acquired; counted as waiting until then."""
        key = f"{namespace}/{name}"
        lock = self.lock(namespace, name)
        self._waiting[key] += 1
        try:
            await lock.acquire()
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
        return lock

    @property
    def locks_held(self) -> int:
        return len(self._locks)

    @classmethod
    async def create(cls) -> Context:
        settings = OperatorSettings()
        return cls(kube=Kube(await KubeRest.connect(settings.kube_timeout_seconds)),
                   storage=Storage(S3Settings()),
                   settings=settings, ladder=settings.load_ladder(),
                   catalog=CatalogFile(settings.ai_catalog_file))

    async def close(self) -> None:
        await self.kube.close()
