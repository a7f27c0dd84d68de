"""Invalid MediaAssets are refused by the API server itself, with messages a user can act on."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from mediaplane.core import names
from tests.support.assets import Assets, manifest
from tests.support.media import Media


def refusal(assets: Assets, body: dict[str, object]) -> tuple[int, str]:
    with pytest.raises(ApiException) as caught:
        assets.create(body)
    return caught.value.status, json.loads(caught.value.body)["message"]


def test_bad_sha256_is_refused(tenant: str, assets: Assets, clip: Media) -> None:
    status, message = refusal(assets, manifest(tenant, names.new_asset_id(), clip,
                                               sha256="not-a-digest"))
    assert status == 422
    assert "spec.sha256" in message
    assert "[a-f0-9]{64}" in message


def test_unknown_kind_is_refused(tenant: str, assets: Assets, clip: Media) -> None:
    status, message = refusal(assets, manifest(tenant, names.new_asset_id(), clip,
                                               kind="document"))
    assert status == 422
    assert 'spec.kind: Unsupported value: "document"' in message


def test_another_tenants_key_is_refused(tenant: str, assets: Assets, clip: Media) -> None:
    asset_id = names.new_asset_id()
    body = manifest(tenant, asset_id, clip, key=f"tenants/someone-else/assets/{asset_id}/source")
    status, message = refusal(assets, body)
    assert status in (403, 422)
    assert f"tenants/{tenant}/" in message
    assert "tenant" in message


def test_key_of_another_asset_is_refused(tenant: str, assets: Assets, clip: Media) -> None:
    body = manifest(tenant, names.new_asset_id(), clip,
                    key=f"tenants/{tenant}/assets/{names.new_asset_id()}/source")
    status, message = refusal(assets, body)
    assert status == 422
    assert "own prefix" in message


def test_spec_is_immutable(tenant: str, assets: Assets, clip: Media) -> None:
    created = assets.create(manifest(tenant, names.new_asset_id(), clip))
    created["spec"]["sha256"] = "f" * 64
    with pytest.raises(ApiException) as caught:
        assets.custom.replace_namespaced_custom_object(
            names.GROUP, names.VERSION, tenant, names.ASSET_PLURAL,
            created["metadata"]["name"], created)
    assert caught.value.status == 422
    assert "spec.sha256 is immutable" in json.loads(caught.value.body)["message"]
