"""An upload that is stored but never finalized leaves nothing behind (real API server and
SeaweedFS; the sweep is the operator's, run here with no grace period)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from mediaplane.core.ladder import Ladder
from mediaplane.core.settings import S3Settings
from mediaplane.core.storage import Storage
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.operator.context import Context
from mediaplane.operator.kube import Kube
from mediaplane.operator.rest import KubeRest
from mediaplane.operator.settings import OperatorSettings
from mediaplane.operator.sweeper import sweep_abandoned_uploads
from tests.support.api import ApiUser, post_form
from tests.support.assets import Assets
from tests.support.media import Media


@pytest.fixture
def s3_env(cluster: DevCluster) -> Iterator[None]:
    """The operator's storage settings and kubeconfig come from the environment, as in its
    process."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in cluster.env().items()
                       if k.startswith(("MEDIAPLANE_S3_", "AWS_")) or k == "KUBECONFIG"})
    yield
    os.environ.clear()
    os.environ.update(saved)


async def test_a_stored_upload_never_finalized_is_swept(
        alice: ApiUser, cluster: DevCluster, assets: Assets, image: Media, audio: Media,
        s3_env: None) -> None:
    kept = alice.upload(audio)  # finalized: an asset names it
    grant = alice.upload_url(image)
    post_form(grant, image.data, image.path.name)  # stored, never finalized
    abandoned = f"tenants/{alice.tenant}/assets/{grant['assetId']}/"
    assert assets.keys_under(abandoned)

    ctx = Context(kube=Kube(await KubeRest.connect(30)), storage=Storage(S3Settings()),
                  ladder=Ladder(), settings=OperatorSettings(upload_grace_seconds=0))
    try:
        removed = await sweep_abandoned_uploads(ctx)
    finally:
        await ctx.close()
    assert abandoned in removed
    assert assets.keys_under(abandoned) == []
    assert assets.keys_under(f"tenants/{alice.tenant}/assets/{kept}/")
    response = alice.client.post(f"/api/v1/media/{grant['assetId']}/finalize",
                                 json={"etag": "0" * 32})
    assert response.status_code == 404, "a late finalize finds nothing, and says so"
