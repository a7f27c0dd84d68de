"""Direct uploads: a presigned POST per asset, and finalize once the bytes are stored."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Response

from mediaplane.api import models
from mediaplane.api.deps import AssetId, Context, CurrentPrincipal, CurrentTenant
from mediaplane.api.errors import ApiError, not_found
from mediaplane.api.openapi import errors
from mediaplane.api.views import Presenter
from mediaplane.core import mimes, names
from mediaplane.core.errors import AlreadyExistsError
from mediaplane.core.resources import MediaAsset
from mediaplane.core.states import SourceOrigin
from mediaplane.core.tasks import MediaKind

router = APIRouter(prefix="/api/v1/media", tags=["uploads"])


def dedup_asset_id(tenant: str, sha256: str) -> str:
    """The same bytes in the same tenant always get the same id: the API server's name
    uniqueness makes concurrent duplicate requests converge on one object."""
    return names.asset_id_from_digest(hashlib.sha256(f"{tenant}/{sha256}".encode()).digest())


def _new_asset(tenant: str, asset_id: str, body: models.UploadUrlRequest, kind: MediaKind,
               user: str) -> MediaAsset:
    return MediaAsset.new(
        tenant, asset_id, kind=kind, mime=mimes.normalise_mime(body.mime),
        sha256=body.sha256, size_bytes=body.size_bytes, filename=body.filename,
        origin=SourceOrigin.UPLOAD, labels={names.LABEL_MANAGED_BY: names.MANAGED_BY},
        annotations={names.UPLOADED_BY_ANNOTATION: user},
        # The operator's finalizer from the start: it would add it anyway (one more write
        # and watch event per upload), and nothing may delete the asset's objects behind
        # its back once the bytes arrive.
        finalizers=[names.FINALIZER])


@router.post("/upload-url", response_model=models.Envelope[models.UploadUrlResponse],
             summary="Create an asset (or find it by sha256) and a presigned upload",
             responses=errors("validation.mime.unsupported", "validation.size.exceeds_limit",
                              "rate.limited", "media.conflict", "media.deleting"))
async def create_upload_url(body: models.UploadUrlRequest, context: Context,
                            principal: CurrentPrincipal, tenant: CurrentTenant,
                            response: Response) -> models.Envelope[models.UploadUrlResponse]:
    limit_headers = await context.limiter.hit(context.settings.upload_url_rate, "upload-url",
                                              tenant.name, principal.user)
    response.headers.update(limit_headers)
    kind = body.kind or mimes.infer_kind(body.mime)
    if kind is None or not mimes.is_accepted(kind, body.mime):
        accepted = sorted(mimes.ACCEPTED[kind]) if kind else []
        raise ApiError("validation.mime.unsupported",
                       f"{body.mime!r} is not accepted" + (f" for {kind}" if kind else ""),
                       details=[{"accepted": accepted}] if accepted else None)
    if body.size_bytes > tenant.max_upload_bytes:
        raise ApiError("validation.size.exceeds_limit",
                       f"{body.size_bytes} bytes is above this tenant's limit of "
                       f"{tenant.max_upload_bytes} bytes per upload")
    asset_id = dedup_asset_id(tenant.name, body.sha256.lower())
    name = names.name_from_asset_id(asset_id)
    try:
        # A repeat is answered from the cache; creating is the lock when it is not there.
        asset = context.assets.cached(tenant.name, name) or await context.assets.create(
            _new_asset(tenant.name, asset_id, body, kind, principal.user))
    except AlreadyExistsError:
        found = await context.assets.get(tenant.name, names.name_from_asset_id(asset_id))
        if found is None:  # deleted in between: the client may simply retry
            raise ApiError("media.conflict", "the asset was deleted meanwhile; retry") from None
        asset = found
    if asset.deleting:
        raise ApiError("media.deleting", f"asset {asset_id} is being deleted; retry shortly")
    spec = asset.spec
    if spec.size_bytes != body.size_bytes or spec.kind is not kind:
        raise ApiError("media.conflict", f"this sha256 is already asset {asset_id} with "
                       f"kind {spec.kind} and {spec.size_bytes} bytes")
    if asset.stored:
        data = models.UploadUrlResponse(asset_id=asset_id, upload_url=None, upload_fields={},
                                        expires_at=None, upload_required=False,
                                        status=asset.phase)
        return models.Envelope(data=data)
    ttl = context.settings.upload_url_ttl_seconds
    post = context.storage.presign_post_exact(spec.source.key, spec.size_bytes, spec.mime,
                                              ttl)
    data = models.UploadUrlResponse(
        asset_id=asset_id, upload_url=post.url, upload_fields=post.fields,
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
        upload_required=True, status=asset.phase)
    return models.Envelope(data=data)


@router.post("/{asset_id}/finalize", response_model=models.Envelope[models.MediaAsset],
             summary="Confirm an upload: the stored object must match the declared one",
             responses=errors("media.not_found", "upload.missing", "upload.mismatch",
                              "media.conflict"))
async def finalize(asset_id: AssetId, body: models.FinalizeRequest, context: Context,
                   principal: CurrentPrincipal, tenant: CurrentTenant
                   ) -> models.Envelope[models.MediaAsset]:
    name = names.name_from_asset_id(asset_id)
    asset = await context.assets.get(tenant.name, name)
    if asset is None:
        raise not_found(asset_id)
    source = asset.spec.source
    if source.origin is not SourceOrigin.UPLOAD:
        raise ApiError("media.conflict", "only uploaded assets are finalized")
    etag = body.etag.strip().strip('"').lower()
    if (source.etag or "").lower() != etag:
        info = await asyncio.to_thread(context.storage.head, source.key)
        if info is None:
            raise ApiError("upload.missing", "no object has been uploaded for this asset; "
                           "POST the file to the upload URL first")
        if info.size != asset.spec.size_bytes:
            raise ApiError("upload.mismatch", f"the stored object has {info.size} bytes, "
                           f"{asset.spec.size_bytes} were declared")
        if info.etag.lower() != etag:
            raise ApiError("upload.mismatch", "the ETag does not match the stored object")
        patched = await context.assets.patch(tenant.name, name, {"spec": {"source": {
            "etag": etag}}})
        if patched is None:
            raise not_found(asset_id)
        asset = patched
    return models.Envelope(data=Presenter(context, principal).asset(asset))
