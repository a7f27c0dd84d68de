"""Direct uploads: a presigned POST per asset, and finalize once the bytes are stored.

upload-url writes nothing to the Kubernetes API: it signs a POST whose policy pins the key,
the size, the type and the declaration (`core.uploads`), so it costs a signature, and an
abandoned one costs nothing. finalize finds the object and creates the MediaAsset from it;
the asset's name derives from (tenant, sha256), so the API server's name uniqueness makes
concurrent finalizes (and repeats) converge on one asset.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response

from mediaplane.api import models
from mediaplane.api.auth import Principal
from mediaplane.api.body import documented_body, json_response, read_model
from mediaplane.api.context import ApiContext
from mediaplane.api.deps import (
    AssetId,
    Context,
    CurrentPrincipal,
    CurrentTenant,
    authenticated,
)
from mediaplane.api.errors import ApiError
from mediaplane.api.kube import Tenant
from mediaplane.api.openapi import errors
from mediaplane.api.views import Presenter
from mediaplane.core import keys, mimes, names
from mediaplane.core.errors import AlreadyExistsError
from mediaplane.core.objects import ObjectInfo
from mediaplane.core.resources import MediaAsset
from mediaplane.core.states import AssetPhase, SourceOrigin
from mediaplane.core.tasks import MediaKind
from mediaplane.core.uploads import UploadDeclaration

router = APIRouter(prefix="/api/v1/media", tags=["uploads"])


def dedup_asset_id(tenant: str, sha256: str) -> str:
    """The same bytes in the same tenant always get the same id: the API server's name
    uniqueness makes concurrent duplicate requests converge on one object."""
    return names.asset_id_from_digest(hashlib.sha256(f"{tenant}/{sha256}".encode()).digest())


def _accepted_kind(body: models.UploadUrlRequest) -> MediaKind:
    kind = body.kind or mimes.infer_kind(body.mime)
    if kind is None or not mimes.is_accepted(kind, body.mime):
        accepted = sorted(mimes.ACCEPTED[kind]) if kind else []
        raise ApiError("validation.mime.unsupported",
                       f"{body.mime!r} is not accepted" + (f" for {kind}" if kind else ""),
                       details=[{"accepted": accepted}] if accepted else None)
    return kind


def _check_existing(asset: MediaAsset, body: models.UploadUrlRequest, kind: MediaKind) -> None:
    if asset.deleting:
        raise ApiError("media.deleting", f"asset {asset.asset_id} is being deleted; retry "
                       "shortly")
    if asset.spec.size_bytes != body.size_bytes or asset.spec.kind is not kind:
        raise ApiError("media.conflict", f"this sha256 is already asset {asset.asset_id} with "
                       f"kind {asset.spec.kind} and {asset.spec.size_bytes} bytes")


@router.post("/upload-url", response_model=models.Envelope[models.UploadUrlResponse],
             summary="A presigned upload for these bytes (or the asset that already has them)",
             responses=errors("validation.mime.unsupported", "validation.size.exceeds_limit",
                              "rate.limited", "media.conflict", "media.deleting"),
             openapi_extra=documented_body(models.UploadUrlRequest))
async def create_upload_url(request: Request) -> Response:
    """The hottest authenticated route reads its caller and body itself (`body`): the
    same checks as the dependencies, at a third of FastAPI's per-request cost."""
    context, principal, tenant = await authenticated(request)
    body = await read_model(request, models.UploadUrlRequest)
    limit_headers = await context.limiter.hit(context.settings.upload_url_rate, "upload-url",
                                              tenant.name, principal.user)
    grant = _grant(context, principal, tenant, body)
    return json_response(models.Envelope(data=grant), limit_headers)


def _grant(context: ApiContext, principal: Principal, tenant: Tenant,
           body: models.UploadUrlRequest) -> models.UploadUrlResponse:
    kind = _accepted_kind(body)
    if body.size_bytes > tenant.max_upload_bytes:
        raise ApiError("validation.size.exceeds_limit",
                       f"{body.size_bytes} bytes is above this tenant's limit of "
                       f"{tenant.max_upload_bytes} bytes per upload")
    asset_id = dedup_asset_id(tenant.name, body.sha256.lower())
    # The watch-fed cache only: a miss means "not finalized yet" (or a moment ago), and the
    # answer is a grant either way, so no request waits on the API server here.
    existing = context.assets.cached(tenant.name, names.name_from_asset_id(asset_id))
    if existing is not None:
        _check_existing(existing, body, kind)
        if existing.stored:
            return models.UploadUrlResponse(
                asset_id=asset_id, upload_url=None, upload_fields={}, expires_at=None,
                upload_required=False, status=existing.phase)
    ttl = context.settings.upload_url_ttl_seconds
    declaration = UploadDeclaration(sha256=body.sha256, kind=kind, filename=body.filename,
                                    user=principal.user)
    post = context.storage.presign_post_exact(
        keys.source_key(tenant.name, asset_id), body.size_bytes,
        mimes.normalise_mime(body.mime), ttl, declaration.metadata())
    return models.UploadUrlResponse(
        asset_id=asset_id, upload_url=post.url, upload_fields=post.fields,
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl), upload_required=True,
        status=AssetPhase.PENDING)


def _asset_from_upload(tenant: str, asset_id: str, info: ObjectInfo,
                       declaration: UploadDeclaration, etag: str) -> MediaAsset:
    return MediaAsset.new(
        tenant, asset_id, kind=declaration.kind, mime=mimes.normalise_mime(
            info.content_type or ""), sha256=declaration.sha256, size_bytes=info.size,
        filename=declaration.filename, origin=SourceOrigin.UPLOAD, etag=etag,
        labels={names.LABEL_MANAGED_BY: names.MANAGED_BY},
        annotations={names.UPLOADED_BY_ANNOTATION: declaration.user},
        # The operator's finalizer from the start: it would add it anyway (one more write
        # and watch event per upload), and nothing may delete the asset's objects behind
        # its back once it exists.
        finalizers=[names.FINALIZER])


@router.post("/{asset_id}/finalize", response_model=models.Envelope[models.MediaAsset],
             summary="Confirm an upload: the asset is made from the stored object",
             responses=errors("media.not_found", "upload.mismatch", "media.conflict"))
async def finalize(asset_id: AssetId, body: models.FinalizeRequest, context: Context,
                   principal: CurrentPrincipal, tenant: CurrentTenant
                   ) -> models.Envelope[models.MediaAsset]:
    name = names.name_from_asset_id(asset_id)
    etag = body.etag.strip().strip('"').lower()
    asset = await context.assets.get(tenant.name, name)
    if asset is None:
        asset = await _create_from_upload(context, tenant.name, asset_id, etag)
    elif asset.spec.source.origin is not SourceOrigin.UPLOAD:
        raise ApiError("media.conflict", "only uploaded assets are finalized")
    elif (asset.spec.source.etag or "").lower() != etag:
        raise ApiError("upload.mismatch", "the asset was finalized with another ETag")
    return models.Envelope(data=Presenter(context, principal).asset(asset))


async def _create_from_upload(context: Context, tenant: str, asset_id: str,
                              etag: str) -> MediaAsset:
    info = await asyncio.to_thread(context.storage.head, keys.source_key(tenant, asset_id))
    if info is None:
        # Nothing uploaded (yet, or ever, or in another tenant): the asset does not exist.
        raise ApiError("media.not_found", f"no asset and no upload for {asset_id}: POST the "
                       "file to the upload URL first, then finalize")
    declaration = UploadDeclaration.from_metadata(info.metadata)
    if declaration is None:
        raise ApiError("upload.mismatch", "the stored object was not uploaded through an "
                       "upload URL of this API")
    if info.etag.lower() != etag:
        raise ApiError("upload.mismatch", "the ETag does not match the stored object")
    if dedup_asset_id(tenant, declaration.sha256) != asset_id:
        raise ApiError("upload.mismatch", "the stored object was declared for another asset")
    try:
        return await context.assets.create(
            _asset_from_upload(tenant, asset_id, info, declaration, etag))
    except AlreadyExistsError:
        # Another finalize of the same upload won the race: the same asset.
        found = await context.assets.get(tenant, names.name_from_asset_id(asset_id),
                                         fresh=True)
        if found is None:
            raise ApiError("media.conflict", "the asset was deleted meanwhile; retry") from None
        return found
