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
    name = created["metadata"]["name"]
    for _ in range(10):  # the operator may write (its finalizer) between our read and write
        current = assets.custom.get_namespaced_custom_object(
            names.GROUP, names.VERSION, tenant, names.ASSET_PLURAL, name)
        current["spec"]["sha256"] = "f" * 64
        with pytest.raises(ApiException) as caught:
            assets.custom.replace_namespaced_custom_object(
                names.GROUP, names.VERSION, tenant, names.ASSET_PLURAL, name, current)
        if caught.value.status != 409:
            break
    assert caught.value.status == 422
    assert "spec.sha256 is immutable" in json.loads(caught.value.body)["message"]


def _ai_body(tenant: str, **spec: object) -> dict[str, object]:
    from mediaplane.core.resources import GenerationSpec, MediaAsset, SpeechGeneration
    from mediaplane.core.states import SourceOrigin
    from mediaplane.core.tasks import AudioFormat, GenerationKind, MediaKind

    generation = GenerationSpec(type=GenerationKind.SPEECH, model="piper:x", prompt="hi",
                                request_sha256="a" * 64, speech=SpeechGeneration(
                                    voice="x", language="en", format=AudioFormat.MP3))
    body = MediaAsset.new(tenant, names.new_asset_id(), kind=MediaKind.AUDIO,
                          mime="audio/mpeg", origin=SourceOrigin.AI,
                          generation=generation).to_body()
    body["spec"].update(spec)
    return body


def test_only_an_ai_asset_starts_without_a_digest(tenant: str, assets: Assets,
                                                  clip: Media) -> None:
    created = assets.create(_ai_body(tenant))
    assert "sha256" not in created["spec"]
    plain = manifest(tenant, names.new_asset_id(), clip)
    del plain["spec"]["sha256"], plain["spec"]["sizeBytes"]
    status, message = refusal(assets, plain)
    assert status == 422
    assert "spec.sha256 and spec.sizeBytes are required" in message
    status, message = refusal(assets, _ai_body(tenant, sha256="a" * 64))
    assert status == 422
    assert "recorded together" in message
    no_generation = _ai_body(tenant)
    del no_generation["spec"]["generation"]  # type: ignore[attr-defined]
    status, message = refusal(assets, no_generation)
    assert "spec.generation is set exactly when" in message


def test_a_recorded_digest_stays_and_the_generation_is_immutable(tenant: str,
                                                                 assets: Assets) -> None:
    created = assets.create(_ai_body(tenant))
    name = created["metadata"]["name"]

    def patch(body: dict[str, object]) -> None:
        assets.custom.patch_namespaced_custom_object(
            names.GROUP, names.VERSION, tenant, names.ASSET_PLURAL, name, body)

    patch({"spec": {"sha256": "b" * 64, "sizeBytes": 10}})
    with pytest.raises(ApiException) as caught:
        patch({"spec": {"sha256": None, "sizeBytes": None}})
    assert "cannot be removed" in json.loads(caught.value.body)["message"]
    with pytest.raises(ApiException) as caught:
        patch({"spec": {"generation": {"prompt": "something else"}}})
    assert "spec.generation is immutable" in json.loads(caught.value.body)["message"]
