"""Removal of uploads that were stored but never finalized.

A REST upload becomes a MediaAsset only at finalize (`core.uploads`). A client that posts
the file and never calls finalize leaves an object no resource names; this sweep finds
those under each tenant's prefix and deletes them once they are older than the grace
period. It touches only objects that carry an upload declaration (put there through one of
our grants): a source an admin put for a manifest to be applied later is left alone.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from mediaplane.core import keys, names
from mediaplane.core.uploads import UploadDeclaration
from mediaplane.operator.context import Context

log = logging.getLogger(__name__)


async def sweep_abandoned_uploads(ctx: Context, now: datetime | None = None) -> list[str]:
    """One pass over every tenant; the prefixes it removed."""
    now = now or datetime.now(UTC)
    grace = timedelta(seconds=ctx.settings.upload_grace_seconds)
    removed = []
    for tenant in await ctx.kube.tenants():
        folders = await asyncio.to_thread(ctx.storage.list_folders, keys.assets_prefix(tenant))
        if not folders:
            continue
        existing = await ctx.kube.asset_names(tenant)
        for folder in folders:
            asset_id = folder[len(keys.assets_prefix(tenant)):].rstrip("/")
            try:
                name = names.name_from_asset_id(asset_id)
            except ValueError:
                continue  # not an asset folder of ours
            if name in existing:
                continue
            info = await asyncio.to_thread(ctx.storage.head, keys.source_key(tenant, asset_id))
            if info is None or UploadDeclaration.from_metadata(info.metadata) is None:
                continue
            if info.last_modified is None or now - info.last_modified < grace:
                continue
            # A finalize may have made the asset since the listing: look once more.
            if await ctx.kube.get_asset(tenant, name) is not None:
                continue
            count = await asyncio.to_thread(ctx.storage.delete_prefix, folder)
            log.info("removed an upload never finalized: %s (%d objects)", folder, count)
            removed.append(folder)
    return removed


async def sweep_forever(ctx: Context) -> None:
    """Every `sweep_interval_seconds`; a failed pass is logged and the next one tries again."""
    while True:
        await asyncio.sleep(ctx.settings.sweep_interval_seconds)
        try:
            await sweep_abandoned_uploads(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:  # the API server or storage away for a while: next pass
            log.exception("sweep of abandoned uploads failed")
