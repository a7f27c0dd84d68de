"""Assets: read one, list a tenant's with filters and cursors, delete, list variants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from mediaplane.api import models, presented
from mediaplane.api.deps import AssetId, Context, CurrentPrincipal, CurrentTenant
from mediaplane.api.errors import ApiError, not_found
from mediaplane.api.kube import AssetFilter
from mediaplane.api.openapi import errors
from mediaplane.api.pagination import (
    DEFAULT_PAGE_SIZE,
    check_page_size,
    decode_cursor,
    encode_cursor,
)
from mediaplane.api.views import Presenter
from mediaplane.core import names
from mediaplane.core.errors import ConflictError
from mediaplane.core.states import AssetPhase, VariantState
from mediaplane.core.tasks import MediaKind

router = APIRouter(prefix="/api/v1/media", tags=["media"])


@router.get("", response_model=models.ListEnvelope[models.MediaAsset],
            summary="List the tenant's assets in id order, one page at a time",
            responses=errors("validation.page_size", "validation.cursor"))
async def list_media(
    context: Context, principal: CurrentPrincipal, tenant: CurrentTenant,
    kind: Annotated[MediaKind | None, Query(alias="filter[kind]")] = None,
    status: Annotated[AssetPhase | None, Query(alias="filter[status]")] = None,
    page_size: Annotated[int, Query(alias="page[size]", description="1 to 200")]
    = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=4096,
                                        description="nextCursor of the previous page")] = None,
) -> Response:
    size = check_page_size(page_size)
    wanted = AssetFilter(kind=kind, phase=status)
    after = decode_cursor(cursor, wanted.fingerprint) if cursor else None
    page = await context.assets.list(tenant.name, limit=size, after=after, wanted=wanted)
    present = Presenter(context, principal).asset
    # The models' own JSON, kept per caller, asset version and minute (`presented`).
    return presented.page(
        [context.presented.json(principal, item, present) for item in page.items],
        encode_cursor(page.continue_token, wanted.fingerprint)
        if page.continue_token else None)


@router.get("/{asset_id}", response_model=models.Envelope[models.MediaAsset],
            summary="One asset, with stream URLs signed for the caller",
            responses=errors("media.not_found"))
async def get_media(asset_id: AssetId, context: Context, principal: CurrentPrincipal,
                    tenant: CurrentTenant) -> Response:
    asset = await context.assets.get(tenant.name, names.name_from_asset_id(asset_id))
    if asset is None:
        raise not_found(asset_id)
    return presented.one(
        context.presented.json(principal, asset, Presenter(context, principal).asset))


@router.delete("/{asset_id}", status_code=204, response_class=Response,
               summary="Delete the asset, its work items and every stored object",
               responses=errors("media.not_found"))
async def delete_media(asset_id: AssetId, context: Context, principal: CurrentPrincipal,
                       tenant: CurrentTenant) -> Response:
    name = names.name_from_asset_id(asset_id)
    if not await context.assets.delete(tenant.name, name):
        raise not_found(asset_id)
    return Response(status_code=204)


@router.get("/{asset_id}/variants", response_model=models.Envelope[list[models.Variant]],
            summary="The asset's renditions and their state",
            responses=errors("media.not_found"))
async def list_variants(asset_id: AssetId, context: Context, principal: CurrentPrincipal,
                        tenant: CurrentTenant) -> models.Envelope[list[models.Variant]]:
    asset = await context.assets.get(tenant.name, names.name_from_asset_id(asset_id))
    if asset is None:
        raise not_found(asset_id)
    return models.Envelope(data=Presenter(context, principal).variants(asset))


VariantName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$",
                                  description="a variant's name, e.g. 360p or poster")]
RETRY_CONFLICTS = 5


@router.post("/{asset_id}/variants/{variant}/retry", status_code=202,
             response_model=models.Envelope[models.Variant],
             summary="Run a failed variant again, without a new upload",
             responses=errors("media.not_found", "validation.variant", "variant.not_failed",
                              "media.deleting", "media.conflict"))
async def retry_variant(asset_id: AssetId, variant: VariantName, context: Context,
                        principal: CurrentPrincipal, tenant: CurrentTenant
                        ) -> models.Envelope[models.Variant]:
    """Asks the operator for one more run of a failed variant (`spec.retries`, as `kubectl
    patch` would); 202 with the variant as it is now. Repeating the request while that
    retry is asked for or running asks for nothing more (202 again)."""
    name = names.name_from_asset_id(asset_id)
    for _ in range(RETRY_CONFLICTS):
        asset = await context.assets.get(tenant.name, name, fresh=True)
        if asset is None:
            raise not_found(asset_id)
        if asset.deleting:
            raise ApiError("media.deleting", f"asset {asset_id} is being deleted")
        found = asset.status.variant(variant)
        if found is None:
            raise ApiError("validation.variant", f"asset {asset_id} has no variant {variant!r}")
        done = found.retries or 0
        asked = asset.spec.retries.get(variant, 0)
        in_flight = asked > done or (done > 0 and found.state in (VariantState.PENDING,
                                                                    VariantState.RUNNING))
        if not in_flight:
            if found.state is not VariantState.FAILED:
                raise ApiError("variant.not_failed",
                               f"variant {variant} is {found.state}, not failed")
            try:
                patched = await context.assets.patch(
                    tenant.name, name, {"spec": {"retries": {variant: done + 1}}},
                    resource_version=asset.metadata.resource_version)
            except ConflictError:
                continue  # the asset changed meanwhile: decide again on what it is now
            if patched is None:
                raise not_found(asset_id)
            asset = patched
        presented = Presenter(context, principal).variants(asset)
        return models.Envelope(data=next(v for v in presented if v.name == variant))
    raise ApiError("media.conflict", "the asset kept changing; retry")
