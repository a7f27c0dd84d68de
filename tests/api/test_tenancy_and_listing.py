"""Tenant isolation on every route, and cursor pagination over many assets."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from mediaplane.api.auth import Principal
from mediaplane.api.signing import StreamSigner
from mediaplane.core import names
from mediaplane.core.resources import MediaAsset
from mediaplane.core.states import SourceOrigin
from mediaplane.core.tasks import MediaKind
from tests.api.conftest import UserFactory
from tests.support.api import ApiUser, error_code, post_form
from tests.support.assets import Assets, manifest
from tests.support.media import Media
from tests.support.wait import eventually


def test_another_tenant_gets_404_on_every_asset_route(alice: ApiUser, mallory: ApiUser,
                                                      image: Media) -> None:
    asset_id = alice.upload(image)
    asset = alice.get(asset_id)
    bodies: dict[str, Any] = {
        "finalize": {"etag": "0" * 32},
        "captions": {"language": "en", "content": "WEBVTT\n\n00:00.000 --> 00:01.000\nx\n"},
        "captions/en": {"approved": True},
    }
    checked = 0
    openapi = httpx.get(f"{alice.base_url}/openapi.json").json()
    routes = [(method.upper(), path) for path, item in openapi["paths"].items()
              if "{asset_id}" in path for method in item]
    for method, template in routes:
        path = (template.replace("{asset_id}", asset_id).replace("{variant}", "all")
                .replace("{language}", "en"))
        body = next((b for k, b in bodies.items() if path.endswith(k)), None)
        response = mallory.client.request(method, path, json=body)
        if "/stream/" in path or path.startswith("/player/"):
            # No link for her: a stream route (or the player) without a valid token is 403,
            # never data.
            assert response.status_code == 403, (method, path, response.text)
        else:
            assert response.status_code == 404, (method, path, response.text)
            assert error_code(response) == "media.not_found"  # the envelope, no asset data
            assert asset["sha256"] not in response.text
        checked += 1
    assert checked >= 9
    # Mallory's list does not show it; Alice's asset is untouched.
    assert mallory.call("GET", "/api/v1/media")["data"] == []
    assert alice.get(asset_id)["sha256"] == asset["sha256"]


def test_a_stream_link_does_not_cross_tenants(alice: ApiUser, mallory: ApiUser,
                                              audio: Media, stream_key: str) -> None:
    asset_id = alice.upload(audio)
    link = alice.wait_status(asset_id, "ready")["streams"]["hls"]
    assert httpx.get(link).status_code == 200
    # Alice's link with Mallory's bearer: refused.
    response = httpx.get(link, headers={"Authorization": mallory.client.headers["Authorization"]})
    assert response.status_code == 403
    assert error_code(response) == "stream.signature.invalid"
    # A validly signed link for Mallory's tenant naming Alice's asset finds nothing there.
    signer = StreamSigner(stream_key, 600)
    token = signer.token(signer.sign(Principal(mallory.tenant, "mallory"), asset_id))
    response = httpx.get(link.split("?")[0] + "?token=" + token)
    assert response.status_code == 404
    assert error_code(response) == "media.not_found"


def test_cursor_pagination_returns_each_asset_exactly_once(
        make_tenant: Callable[..., str], make_user: UserFactory, assets: Assets) -> None:
    tenant = make_tenant()

    def create(index: int) -> str:
        # Uploads whose bytes never come: listed like any asset, and no work for the
        # operator (250 transcodes would only slow this test down).
        asset = MediaAsset.new(tenant, names.new_asset_id(), kind=MediaKind.IMAGE,
                               mime="image/png", sha256=hashlib.sha256(
                                   str(index).encode()).hexdigest(), size_bytes=100 + index,
                               origin=SourceOrigin.UPLOAD)
        assets.create(asset.to_body())
        return asset.asset_id

    with ThreadPoolExecutor(8) as pool:
        created = set(pool.map(create, range(250)))
    assert len(created) == 250
    reader = make_user(tenant, "pager")
    # Lists come from the API's watch-fed cache: wait until it has seen the last creates.
    eventually(lambda: len(reader.call("GET", "/api/v1/media",
                                       params={"page[size]": 200})["data"]) == 200 and
               len(reader.call("GET", "/api/v1/media", params={"page[size]": 200, "cursor": (
                   reader.call("GET", "/api/v1/media", params={"page[size]": 200})
                   ["nextCursor"])})["data"]) == 50, "the API to list all 250 assets",
               timeout=30)
    for size in (200, 100):
        seen: list[str] = []
        pages = 0
        cursor = None
        while True:
            params: dict[str, Any] = {"page[size]": size}
            if cursor:
                params["cursor"] = cursor
            page = reader.call("GET", "/api/v1/media", params=params)
            pages += 1
            assert len(page["data"]) <= size
            seen.extend(item["id"] for item in page["data"])
            cursor = page.get("nextCursor")
            if not cursor:
                break
        assert pages == -(-250 // size)
        assert len(seen) == len(set(seen)) == 250
        assert set(seen) == created
    default = reader.call("GET", "/api/v1/media")
    assert len(default["data"]) == 50
    assert default["nextCursor"]
    too_big = reader.client.get("/api/v1/media", params={"page[size]": 201})
    assert too_big.status_code == 422
    assert error_code(too_big) == "validation.page_size"
    wrong = reader.client.get("/api/v1/media", params={"cursor": "not-a-cursor"})
    assert wrong.status_code == 422
    assert error_code(wrong) == "validation.cursor"
    other_filter = reader.client.get("/api/v1/media", params={
        "cursor": default["nextCursor"], "filter[kind]": "video"})
    assert other_filter.status_code == 422
    assert error_code(other_filter) == "validation.cursor"


def test_filters(alice: ApiUser, image: Media, audio: Media, assets: Assets) -> None:
    image_id = alice.upload(image)
    pending_audio = names.new_asset_id()  # applied with kubectl, its bytes never put: pending
    assets.create(manifest(alice.tenant, pending_audio, audio))
    alice.wait_status(image_id, "ready")
    kinds = alice.call("GET", "/api/v1/media", params={"filter[kind]": "image"})["data"]
    assert [a["id"] for a in kinds] == [image_id]
    ready = alice.call("GET", "/api/v1/media", params={"filter[status]": "ready"})["data"]
    assert [a["id"] for a in ready] == [image_id]
    both = alice.call("GET", "/api/v1/media", params={"filter[kind]": "audio",
                                                      "filter[status]": "ready"})["data"]
    assert both == []
    audio_only = alice.call("GET", "/api/v1/media", params={"filter[kind]": "audio"})["data"]
    assert [a["id"] for a in audio_only] == [pending_audio]
    bad = alice.client.get("/api/v1/media", params={"filter[kind]": "document"})
    assert bad.status_code == 422
    assert error_code(bad) == "validation.invalid"


def test_delete_removes_the_asset_and_its_objects(alice: ApiUser, image: Media,
                                                  assets: Any) -> None:
    asset_id = alice.upload(image)
    alice.wait_status(asset_id, "ready")
    prefix = f"tenants/{alice.tenant}/assets/{asset_id}/"
    assert assets.keys_under(prefix)
    assert alice.call("DELETE", f"/api/v1/media/{asset_id}", expect=204) is None
    name = asset_id.replace("_", "-")
    # The objects go with the finalizer; the TranscodeJobs go after, by the garbage collector.
    eventually(lambda: (alice.client.get(f"/api/v1/media/{asset_id}").status_code == 404
                        and not assets.keys_under(prefix)
                        and not assets.transcode_jobs(alice.tenant, name)),
               "the asset, its objects and its TranscodeJobs to be gone", timeout=60,
               interval=0.5)
    assert alice.client.get(f"/api/v1/media/{asset_id}").status_code == 404
    assert assets.keys_under(prefix) == []
    assert assets.transcode_jobs(alice.tenant, name) == []
    again = alice.client.delete(f"/api/v1/media/{asset_id}")
    assert again.status_code == 404
    assert error_code(again) == "media.not_found"


def test_upload_helper_flow_round_trip(alice: ApiUser, audio: Media) -> None:
    grant = alice.upload_url(audio)
    etag = post_form(grant, audio.data, audio.path.name)
    alice.finalize(grant["assetId"], etag)
    asset = alice.wait_status(grant["assetId"], "ready")
    assert asset["kind"] == "audio"
    assert asset["streams"]["hls"]
