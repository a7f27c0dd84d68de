"""What every handler needs, created once at operator start-up and kept in kopf's memo."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mediaplane.core.kubeclient import connect
from mediaplane.core.settings import S3Settings
from mediaplane.core.storage import Storage
from mediaplane.operator.kube import Kube
from mediaplane.operator.settings import OperatorSettings

if TYPE_CHECKING:
    from mediaplane.core.ladder import Ladder


@dataclass
class Context:
    kube: Kube
    storage: Storage
    settings: OperatorSettings
    ladder: Ladder
    # Events about one asset arrive from several watches (the asset, its TranscodeJobs);
    # one lock per asset keeps its reconciles from interleaving their status writes.
    _locks: defaultdict[str, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock))

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self._locks[f"{namespace}/{name}"]

    def forget(self, namespace: str, name: str) -> None:
        self._locks.pop(f"{namespace}/{name}", None)

    @classmethod
    async def create(cls) -> Context:
        settings = OperatorSettings()
        return cls(kube=Kube(await connect()), storage=Storage(S3Settings()),
                   settings=settings, ladder=settings.load_ladder())

    async def close(self) -> None:
        await self.kube.api.close()
