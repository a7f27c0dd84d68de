"""Prompt moderation, before anything is created or charged: a chain of three stages.

1. `rules`: the category rules of `safety_rules` (sexual content, minors, violence,
   self-harm, hate) with the tenant's own terms, on a canonical form of the text;
2. `classifier`: `alt-profanity-check`, a small scikit-learn model shipped inside its
   wheel (loaded from disk once, off the event loop), for insults and abuse;
3. `remote` (optional): an OpenAI-compatible `/v1/moderations` service.

The first stage that objects decides the category. A refusal never repeats the text: the
caller gets the category, the metrics count it, and the tenant's namespace gets an event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from prometheus_client import Counter

from mediaplane.api import safety_rules

log = logging.getLogger("mediaplane.api.moderation")
REFUSALS = Counter("mediaplane_api_ai_refusals_total",
                   "Prompts refused by moderation, by category and stage",
                   ["category", "stage"])
PROFANITY = "profanity"


@dataclass(frozen=True)
class Verdict:
    category: str | None = None
    stage: str | None = None

    @property
    def allowed(self) -> bool:
        return self.category is None


class Stage(Protocol):
    name: str

    async def check(self, text: str, tenant_terms: Sequence[str]) -> str | None:
        """The category the text falls in, or None."""
        ...


class Rules:
    name = "rules"

    async def check(self, text: str, tenant_terms: Sequence[str]) -> str | None:
        finding = safety_rules.check(text, tenant_terms)
        return finding.category if finding else None


class ProfanityClassifier:
    """alt-profanity-check: the probability that a text is offensive."""

    name = "classifier"

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._predict: Any = None
        self._loading: asyncio.Task[Any] | None = None

    @staticmethod
    def _load() -> Any:
        from profanity_check import predict_prob  # about 1.5 s: scikit-learn and the model

        predict_prob(["warm up"])
        return predict_prob

    async def warm(self) -> None:
        if self._predict is None:
            if self._loading is None:
                self._loading = asyncio.ensure_future(asyncio.to_thread(self._load))
            self._predict = await self._loading

    def probability(self, text: str) -> float:
        """Synchronous (for the labelled-set test); loads the model on first use."""
        if self._predict is None:
            self._predict = self._load()
        return float(self._predict([text])[0])

    async def check(self, text: str, tenant_terms: Sequence[str]) -> str | None:
        await self.warm()
        probability = await asyncio.to_thread(self.probability, text)
        return PROFANITY if probability >= self.threshold else None


class RemoteModeration:
    """An OpenAI-compatible `POST /v1/moderations`; a flagged answer names the category."""

    name = "remote"

    def __init__(self, url: str, api_key: str | None, model: str | None,
                 timeout: float) -> None:
        self.url = url.rstrip("/") + "/v1/moderations"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def check(self, text: str, tenant_terms: Sequence[str]) -> str | None:
        body: dict[str, Any] = {"input": text}
        if self.model:
            body["model"] = self.model
        try:
            response = await self.client.post(self.url, json=body, headers=self.headers)
            response.raise_for_status()
            result = response.json()["results"][0]
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as error:
            # Fail closed: a prompt the chain could not finish checking is not accepted.
            raise ModerationUnavailableError(f"moderation service: {error}") from None
        if not result.get("flagged"):
            return None
        categories = result.get("categories") or {}
        flagged = sorted(name for name, on in categories.items() if on)
        return _category_name(flagged[0]) if flagged else "flagged"

    async def close(self) -> None:
        await self.client.aclose()


def _category_name(name: str) -> str:
    """OpenAI's names ("self-harm/intent", "sexual/minors") in ours."""
    mapping = {"sexual/minors": safety_rules.MINORS, "self-harm": safety_rules.SELF_HARM}
    for prefix, ours in mapping.items():
        if name.startswith(prefix):
            return ours
    return name.split("/", 1)[0]


class ModerationUnavailableError(Exception):
    pass


class Moderator:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    async def check(self, text: str, tenant_terms: Sequence[str] = ()) -> Verdict:
        for stage in self.stages:
            category = await stage.check(text, tenant_terms)
            if category is not None:
                REFUSALS.labels(category, stage.name).inc()
                return Verdict(category=category, stage=stage.name)
        return Verdict()

    async def warm(self) -> None:
        for stage in self.stages:
            if isinstance(stage, ProfanityClassifier):
                await stage.warm()

    async def close(self) -> None:
        for stage in self.stages:
            if isinstance(stage, RemoteModeration):
                await stage.close()
