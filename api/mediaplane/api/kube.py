"""MediaAssets and tenants on the Kubernetes API (kubernetes_asyncio, one shared client).

`AssetRepository` and `TenantRepository` are what the routes need; `AssetStore` and
`TenantDirectory` implement them on the API server, the fast tests in memory. Answers are
typed resources; failures are `core.errors` domain errors (a missing object is None),
which the API's one error table maps to the contract's codes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from mediaplane.api.informer import AssetInformer
from mediaplane.core import names
from mediaplane.core.errors import (
    AlreadyExistsError,
    ConflictError,
    RejectedError,
    UnavailableError,
)
from mediaplane.core.resources import MediaAsset
from mediaplane.core.states import AssetPhase
from mediaplane.core.tasks import MediaKind

log = logging.getLogger("mediaplane.api.kube")

def _unavailable(error: Exception) -> UnavailableError:
    return UnavailableError(f"Kubernetes API: {error}")


def _refused(error: ApiException) -> Exception:
    if error.status == 422:
        body = error.body.decode() if isinstance(error.body, bytes) else str(error.body)
        return RejectedError(f"refused by the API server: {body}")
    if error.status == 409:
        return ConflictError("the asset changed meanwhile; retry")
    return _unavailable(error)


@dataclass(frozen=True)
class Page:
    items: list[MediaAsset]
    continue_token: str | None  # the last name of this page, when another page follows


@dataclass(frozen=True)
class AssetFilter:
    kind: MediaKind | None = None
    phase: AssetPhase | None = None

    def matches(self, asset: MediaAsset) -> bool:
        return ((self.kind is None or asset.spec.kind is self.kind)
                and (self.phase is None or asset.phase is self.phase))

    @property
    def fingerprint(self) -> str:
        """What a cursor is bound to: a cursor made for other filters is refused."""
        return f"kind={self.kind or ''},phase={self.phase or ''}"


def page_of(assets: Iterable[MediaAsset], wanted: AssetFilter, limit: int) -> Page:
    """The first `limit` matches of `assets` (in name order), and where the next page starts."""
    items: list[MediaAsset] = []
    for asset in assets:
        if not wanted.matches(asset):
            continue
        if len(items) == limit:
            return Page(items=items, continue_token=items[-1].name)
        items.append(asset)
    return Page(items=items, continue_token=None)


@dataclass(frozen=True)
class Tenant:
    name: str
    max_upload_bytes: int
    # AI generation: budgets ("<units>/<period>") and extra moderation terms from the
    # namespace's annotations; None and empty mean the API's defaults.
    ai_image_budget: str | None = None
    ai_speech_budget: str | None = None
    ai_blocked_terms: tuple[str, ...] = ()


class AssetRepository(Protocol):
    @property
    def synced(self) -> bool:
        """The cache has seen every asset once (readiness)."""
        ...

    async def close(self) -> None: ...

    async def get(self, namespace: str, name: str, *, fresh: bool = False
                  ) -> MediaAsset | None: ...

    def cached(self, namespace: str, name: str) -> MediaAsset | None: ...

    async def create(self, asset: MediaAsset) -> MediaAsset: ...

    async def patch(self, namespace: str, name: str, patch: dict[str, Any],
                    resource_version: str | None = None) -> MediaAsset | None: ...

    async def delete(self, namespace: str, name: str) -> bool: ...

    async def list(self, namespace: str, *, limit: int, after: str | None,
                   wanted: AssetFilter) -> Page:
        """A page in name order: up to `limit` assets past the name `after`."""
        ...


class TenantRepository(Protocol):
    async def get(self, name: str) -> Tenant | None: ...

    async def ping(self) -> None: ...

    async def post_event(self, namespace: str, reason: str, message: str) -> None:
        """A Warning event about the tenant's namespace (e.g. a refused prompt)."""
        ...


class AssetStore:
    """Reads go through the informer's cache (a miss asks the API server); writes go to the
    API server and their answers into the cache."""

    def __init__(self, api: client.ApiClient, informer: AssetInformer | None = None) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.informer = informer

    @property
    def synced(self) -> bool:
        return self.informer is None or self.informer.synced.is_set()

    async def close(self) -> None:
        if self.informer is not None:
            await self.informer.stop()

    async def get(self, namespace: str, name: str, *, fresh: bool = False) -> MediaAsset | None:
        """`fresh` skips the cache: for read-modify-write with a resourceVersion."""
        informer = self.informer
        if informer is not None and not fresh and informer.synced.is_set():
            cached = informer.get(namespace, name)
            if cached is not None:
                return cached
        found = await self._read(namespace, name)
        if found is not None and informer is not None:
            informer.observe(found)
        return found

    def cached(self, namespace: str, name: str) -> MediaAsset | None:
        """The cached copy only (no API call): a hint, e.g. that a name is taken."""
        return self.informer.get(namespace, name) if self.informer is not None else None

    async def _read(self, namespace: str, name: str) -> MediaAsset | None:
        try:
            body = await self.custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.ASSET_PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise _unavailable(error) from None
        return MediaAsset.model_validate(body)

    async def create(self, asset: MediaAsset) -> MediaAsset:
        """Raises AlreadyExistsError when the name is taken: that is how dedup works."""
        try:
            body = await self.custom.create_namespaced_custom_object(
                names.GROUP, names.VERSION, asset.tenant, names.ASSET_PLURAL, asset.to_body())
        except ApiException as error:
            if error.status == 409:
                raise AlreadyExistsError(asset.name) from None
            raise _refused(error) from None
        created = MediaAsset.model_validate(body)
        if self.informer is not None:
            self.informer.observe(created)
        return created

    async def patch(self, namespace: str, name: str, patch: dict[str, Any],
                    resource_version: str | None = None) -> MediaAsset | None:
        """A JSON merge patch; with `resource_version` it only applies to that version."""
        if resource_version is not None:
            patch = {**patch, "metadata": {"resourceVersion": resource_version}}
        try:
            body = await self.custom.patch_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.ASSET_PLURAL, name, patch,
                _content_type="application/merge-patch+json")  # type: ignore[call-arg]
        except ApiException as error:
            if error.status == 404:
                return None
            raise _refused(error) from None
        patched = MediaAsset.model_validate(body)
        if self.informer is not None:
            self.informer.observe(patched)
        return patched

    async def delete(self, namespace: str, name: str) -> bool:
        try:
            await self.custom.delete_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.ASSET_PLURAL, name,
                propagation_policy="Background")
        except ApiException as error:
            if error.status == 404:
                return False
            raise _unavailable(error) from None
        return True

    async def list(self, namespace: str, *, limit: int, after: str | None,
                   wanted: AssetFilter) -> Page:
        """From the watch-fed cache, by name (keyset paging): a page costs no API call and
        no 1 MB answer from the API server, and each asset appears at most once across the
        pages of a listing, whatever is created or deleted meanwhile."""
        if self.informer is None or not self.informer.synced.is_set():
            raise UnavailableError("the asset cache is still loading; retry in a moment")
        return page_of(self.informer.after(namespace, after), wanted, limit)


class TenantDirectory:
    """Tenants are namespaces with the tenant label; read through a short cache."""

    def __init__(self, api: client.ApiClient, default_max_upload: int,
                 cache_seconds: float) -> None:
        self.core = client.CoreV1Api(api)
        self.default_max_upload = default_max_upload
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Tenant | None]] = {}

    async def get(self, name: str) -> Tenant | None:
        """A tenant read in the last `cache_seconds`, else read again; while the API server
        does not answer, the last answer known (as the asset cache does): reads served from
        the cache keep working through an outage, and nothing can change a namespace then."""
        cached = self._cache.get(name)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        try:
            tenant = await self._read(name)
        except UnavailableError:
            if cached is not None:
                return cached[1]
            raise
        self._cache[name] = (now, tenant)
        return tenant

    async def ping(self) -> None:
        """Raises UnavailableError unless the API server answers."""
        try:
            await self.core.get_api_resources()
        except Exception as error:  # any failure to answer is "not ready"
            raise _unavailable(error) from None

    async def _read(self, name: str) -> Tenant | None:
        try:
            namespace = await self.core.read_namespace(name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise _unavailable(error) from None
        meta = namespace.metadata
        if (meta.labels or {}).get(names.TENANT_LABEL) != "true" or meta.deletion_timestamp:
            return None
        annotations = meta.annotations or {}
        limit = self.default_max_upload
        raw = annotations.get(names.MAX_UPLOAD_ANNOTATION)
        if raw and raw.isdigit() and int(raw) > 0:
            limit = int(raw)
        terms = annotations.get(names.AI_BLOCKED_TERMS_ANNOTATION, "")
        return Tenant(name=name, max_upload_bytes=limit,
                      ai_image_budget=annotations.get(names.AI_IMAGE_BUDGET_ANNOTATION),
                      ai_speech_budget=annotations.get(names.AI_SPEECH_BUDGET_ANNOTATION),
                      ai_blocked_terms=tuple(t.strip() for t in terms.split(",") if t.strip()))

    async def post_event(self, namespace: str, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        body = {
            "metadata": {"generateName": "mediaplane-api.", "namespace": namespace},
            # The API server wants the event's namespace in the reference too.
            "involvedObject": {"apiVersion": "v1", "kind": "Namespace", "name": namespace,
                               "namespace": namespace},
            "reason": reason, "message": message[:1024], "type": "Warning",
            "source": {"component": "mediaplane-api"}, "reportingComponent": "mediaplane-api",
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        try:
            await self.core.create_namespaced_event(namespace, cast("Any", body))
        except ApiException as error:  # an event is worth a log line, not a failed request
            log.warning("cannot post event %s in %s: %s", reason, namespace, error.reason)
