"""Assets: read one, list a tenant's with filters and cursors, delete, list variants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from mediaplane.api import models
from mediaplane.api.deps import AssetId, Context, CurrentPrincipal, CurrentTenant
from mediaplane.api.errors import not_found
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
from mediaplane.core.states import AssetPhase
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
) -> models.ListEnvelope[models.MediaAsset]:
    size = check_page_size(page_size)
    wanted = AssetFilter(kind=kind, phase=status)
    after = decode_cursor(cursor, wanted.fingerprint) if cursor else None
    page = await context.assets.list(tenant.name, limit=size, after=after, wanted=wanted)
    presenter = Presenter(context, principal)
    return models.ListEnvelope(
        data=[presenter.asset(item) for item in page.items],
        next_cursor=encode_cursor(page.continue_token, wanted.fingerprint)
        if page.continue_token else None)


@router.get("/{asset_id}", response_model=models.Envelope[models.MediaAsset],
            summary="One asset, with stream URLs signed for the caller",
            responses=errors("media.not_found"))
async def get_media(asset_id: AssetId, context: Context, principal: CurrentPrincipal,
                    tenant: CurrentTenant) -> models.Envelope[models.MediaAsset]:
    asset = await context.assets.get(tenant.name, names.name_from_asset_id(asset_id))
    if asset is None:
        raise not_found(asset_id)
    return models.Envelope(data=Presenter(context, principal).asset(asset))


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
