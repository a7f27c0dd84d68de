"""AI generation in the API: the catalogue, moderation, budgets and refunds, together.

The routes (`routers/ai.py`) validate a request against the catalogue, moderate it, and
then, under a claim on the asset id, check whether the asset exists, take a budget unit and
create it: identical requests (same tenant, model, normalised prompt and parameters) have
the same asset id, so however many arrive at once, one asset is made and one unit taken.
A failed generation gives its unit back: every replica watches assets, and the first to see
the failure returns the unit (once per asset uid, whichever replica it is).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from mediaplane.api.budgets import Budget, Budgets, store_from_uri
from mediaplane.api.kube import Tenant
from mediaplane.api.moderation import (
    Moderator,
    ProfanityClassifier,
    RemoteModeration,
    Rules,
    Stage,
)
from mediaplane.api.settings import ApiSettings
from mediaplane.core import names
from mediaplane.core.ai import CatalogFile
from mediaplane.core.resources import MediaAsset
from mediaplane.core.states import VariantState
from mediaplane.core.tasks import GenerationKind

log = logging.getLogger("mediaplane.api.generation")
REMEMBERED_REFUNDS = 10_000


@dataclass
class AiServices:
    catalog: CatalogFile
    moderator: Moderator
    budgets: Budgets
    defaults: dict[GenerationKind, Budget]
    _refunded: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _tasks: set[asyncio.Task[bool]] = field(default_factory=set)

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> AiServices:
        stages: list[Stage] = [Rules(), ProfanityClassifier(settings.ai_profanity_threshold)]
        if settings.ai_moderation_url:
            key = settings.ai_moderation_api_key
            stages.append(RemoteModeration(
                settings.ai_moderation_url, key.get_secret_value() if key else None,
                settings.ai_moderation_model, settings.ai_moderation_timeout_seconds))
        return cls(catalog=CatalogFile(settings.ai_catalog_file), moderator=Moderator(stages),
                   budgets=Budgets(store_from_uri(settings.rate_limit_storage)),
                   defaults={GenerationKind.IMAGE: Budget.parse(settings.ai_image_budget),
                             GenerationKind.SPEECH: Budget.parse(settings.ai_speech_budget)})

    def budget(self, tenant: Tenant, kind: GenerationKind) -> Budget:
        """The tenant's annotation when it parses, else the default."""
        rule = tenant.ai_image_budget if kind is GenerationKind.IMAGE else \
            tenant.ai_speech_budget
        if rule:
            try:
                return Budget.parse(rule)
            except ValueError:
                log.warning("tenant %s: budget annotation %r does not parse; using the "
                            "default", tenant.name, rule)
        return self.defaults[kind]

    # --- refunds -----------------------------------------------------------------------

    def observe(self, asset: MediaAsset) -> None:
        """Called for every asset the watch delivers: a failed generation is refunded."""
        if not _failed_generation(asset) or asset.metadata.uid in self._refunded:
            return
        task = asyncio.get_running_loop().create_task(self.refund(asset))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def refund(self, asset: MediaAsset) -> bool:
        """Gives the failed generation's unit back; True when this call did."""
        label = asset.metadata.annotations.get(names.AI_BUDGET_WINDOW_ANNOTATION)
        uid = asset.metadata.uid
        if not _failed_generation(asset) or not label or uid is None:
            return False
        try:
            done = await self.budgets.give_back(asset.tenant, label, marker=uid)
        except Exception as error:  # the next watch event or relist tries again
            log.warning("refund of %s/%s failed: %s", asset.tenant, asset.name, error)
            return False
        self._refunded[uid] = None
        while len(self._refunded) > REMEMBERED_REFUNDS:
            self._refunded.popitem(last=False)
        if done:
            log.info("gave back the %s unit of failed %s/%s", label, asset.tenant, asset.name)
        return done

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.moderator.close()
        await self.budgets.store.close()


def _failed_generation(asset: MediaAsset) -> bool:
    status = asset.status.generation
    return asset.spec.generation is not None and status is not None and \
        status.state is VariantState.FAILED


def now() -> float:
    return time.time()
