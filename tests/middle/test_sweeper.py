"""Uploads stored but never finalized are removed after the grace period, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediaplane.core import keys, names
from mediaplane.core.ladder import Ladder
from mediaplane.core.resources import MediaAsset
from mediaplane.core.tasks import MediaKind
from mediaplane.core.uploads import UploadDeclaration
from mediaplane.operator.context import Context
from mediaplane.operator.settings import OperatorSettings
from mediaplane.operator.sweeper import sweep_abandoned_uploads
from tests.support.memkube import MemoryKube, MemoryObjects

DECLARED = UploadDeclaration(sha256="a" * 64, kind=MediaKind.VIDEO, filename="a.mp4",
                             user="alice").metadata()


async def test_only_old_unfinalized_uploads_go() -> None:
    kube, objects = MemoryKube(), MemoryObjects()
    kube.tenant_namespaces = {"acme", "empty"}
    ctx = Context(kube=kube, storage=objects, ladder=Ladder(),
                  settings=OperatorSettings(upload_grace_seconds=3600))
    abandoned, fresh, finalized, manual = (names.new_asset_id() for _ in range(4))
    for asset_id in (abandoned, fresh, finalized):
        objects.put(keys.source_key("acme", asset_id), b"x", "video/mp4", DECLARED)
    objects.put(keys.source_key("acme", manual), b"x", "video/mp4")  # an admin's, no grant
    objects.put(keys.asset_prefix("acme", abandoned) + "variants/x/seg.m4s", b"y")
    kube.add_asset(MediaAsset.new("acme", finalized, kind=MediaKind.VIDEO, mime="video/mp4",
                                  sha256="a" * 64, size_bytes=1))
    later = datetime.now(UTC) + timedelta(hours=2)
    objects.modified[keys.source_key("acme", fresh)] = later  # uploaded two hours "later"

    removed = await sweep_abandoned_uploads(ctx, now=later)
    assert removed == [keys.asset_prefix("acme", abandoned)]
    assert objects.under(keys.asset_prefix("acme", abandoned)) == []
    for kept in (fresh, finalized, manual):
        assert objects.under(keys.asset_prefix("acme", kept)), kept
    assert await sweep_abandoned_uploads(ctx, now=later) == [], "a second pass finds nothing"
