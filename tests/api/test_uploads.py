"""upload-url and finalize: validation, dedup, and the storage's own enforcement of the policy."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from kubernetes import client as k8s

from mediaplane.core import names
from tests.api.conftest import UserFactory
from tests.support.api import ApiUser, error_code, form_response, post_form
from tests.support.media import Media


def _bytes_media(directory: Path, data: bytes, mime: str, kind: str, name: str) -> Media:
    path = directory / name
    path.write_bytes(data)
    return Media(path, mime, kind)


def _count_assets(kube_api: k8s.ApiClient, tenant: str) -> int:
    listing = k8s.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        names.GROUP, names.VERSION, tenant, names.ASSET_PLURAL)
    return len(listing["items"])


def test_upload_url_answer_and_kind_inference(alice: ApiUser, image: Media) -> None:
    grant = alice.upload_url(image)  # no kind: inferred from image/png
    assert grant["assetId"].startswith("mda_")
    assert len(grant["assetId"]) == 30
    assert grant["uploadRequired"] is True
    assert grant["status"] == "pending"
    fields = grant["uploadFields"]
    assert fields["Content-Type"] == "image/png"
    assert fields["key"] == f"tenants/{alice.tenant}/assets/{grant['assetId']}/source"
    assert {"policy", "x-amz-signature", "x-amz-credential"} <= set(fields)
    assert fields["x-amz-meta-mediaplane-sha256"] == image.sha256
    assert grant["expiresAt"]
    # Nothing exists until the upload is finalized.
    response = alice.client.get(f"/api/v1/media/{grant['assetId']}")
    assert (response.status_code, error_code(response)) == (404, "media.not_found")
    etag = post_form(grant, image.data, image.path.name)
    asset = alice.finalize(grant["assetId"], etag)["data"]
    assert (asset["kind"], asset["source"], asset["filename"]) == ("image", "upload",
                                                                   image.path.name)
    assert asset["status"] in ("pending", "processing", "ready")


def test_unsupported_mime_and_size_limit(alice: ApiUser, make_tenant: Callable[..., str],
                                         make_user: UserFactory, clip: Media) -> None:
    for overrides in ({"mime": "application/x-msdownload"}, {"mime": "image/png",
                                                              "kind": "video"}):
        response = alice.client.post("/api/v1/media/upload-url", json={
            "sha256": clip.sha256, "sizeBytes": clip.size, "filename": "x", **overrides,
            **({} if "mime" in overrides else {"mime": clip.mime})})
        assert response.status_code == 422
        assert error_code(response) == "validation.mime.unsupported"
    small = make_user(make_tenant(max_upload_bytes=1000))
    response = small.client.post("/api/v1/media/upload-url", json={
        "sha256": clip.sha256, "sizeBytes": 1001, "mime": "video/mp4", "filename": "a.mp4"})
    assert response.status_code == 422
    assert error_code(response) == "validation.size.exceeds_limit"


def test_storage_refuses_what_the_policy_does_not_allow(alice: ApiUser, tmp_path: Path) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    item = _bytes_media(tmp_path, data, "image/png", "image", "policy.png")
    grant = alice.upload_url(item)
    # One byte more than declared.
    assert form_response(grant, data + b"x", "policy.png").status_code in (400, 403)
    # Another key, even inside the tenant's prefix.
    other_key = dict(grant["uploadFields"],
                     key=f"tenants/{alice.tenant}/assets/{grant['assetId']}/other")
    assert form_response(grant, data, "policy.png", other_key).status_code == 403
    # Another content type.
    other_type = dict(grant["uploadFields"], **{"Content-Type": "text/html"})
    assert form_response(grant, data, "policy.png", other_type).status_code == 403
    # The declaration the asset is made from cannot be changed either.
    lying = dict(grant["uploadFields"], **{"x-amz-meta-mediaplane-kind": "video"})
    assert form_response(grant, data, "policy.png", lying).status_code == 403
    # The policy as issued works.
    etag = post_form(grant, data, "policy.png")
    assert alice.finalize(grant["assetId"], etag)["data"]["id"] == grant["assetId"]


def test_finalize_checks_the_stored_object(alice: ApiUser, tmp_path: Path) -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"finalize" * 100
    grant = alice.upload_url(_bytes_media(tmp_path, data, "image/png", "image", "f.png"))
    etag = post_form(grant, data, "f.png")
    response = alice.client.post(f"/api/v1/media/{grant['assetId']}/finalize",
                                 json={"etag": "0" * 32})
    assert response.status_code == 409
    assert error_code(response) == "upload.mismatch"
    missing = alice.client.post(f"/api/v1/media/mda_{'0' * 26}/finalize", json={"etag": etag})
    assert missing.status_code == 404
    assert error_code(missing) == "media.not_found"
    assert alice.finalize(grant["assetId"], etag)["data"]["status"] in ("pending", "processing")
    assert alice.finalize(grant["assetId"], f'"{etag}"')["data"]["id"] == grant["assetId"]
    again = alice.client.post(f"/api/v1/media/{grant['assetId']}/finalize",
                              json={"etag": "1" * 32})
    assert (again.status_code, error_code(again)) == (409, "upload.mismatch")


def test_same_sha256_twice_and_ten_times_concurrently_is_one_asset(
        alice: ApiUser, kube_api: k8s.ApiClient, tmp_path: Path) -> None:
    data = b"RIFF" + hashlib.sha256(b"dedup").digest() * 64
    item = _bytes_media(tmp_path, data, "audio/wav", "audio", "d.wav")
    first = alice.upload_url(item)
    assert alice.upload_url(item)["assetId"] == first["assetId"]
    assert _count_assets(kube_api, alice.tenant) == 0, "grants write nothing"
    alice.finalize(first["assetId"], post_form(first, data, "d.wav"))
    assert alice.upload_url(item)["uploadRequired"] is False

    other = _bytes_media(tmp_path, data + b"!", "audio/wav", "audio", "e.wav")
    with ThreadPoolExecutor(10) as pool:
        grants = list(pool.map(lambda _: alice.upload_url(other), range(10)))
    assert len({g["assetId"] for g in grants}) == 1
    etag = post_form(grants[0], other.data, "e.wav")
    with ThreadPoolExecutor(10) as pool:
        finalized = list(pool.map(lambda _: alice.finalize(grants[0]["assetId"], etag),
                                  range(10)))
    assert {f["data"]["id"] for f in finalized} == {grants[0]["assetId"]}
    assert _count_assets(kube_api, alice.tenant) == 2


def test_same_sha256_with_another_size_is_a_conflict(alice: ApiUser, tmp_path: Path) -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"conflict" * 10
    item = _bytes_media(tmp_path, data, "image/png", "image", "c.png")
    alice.upload(item)
    response = alice.client.post("/api/v1/media/upload-url", json={
        "sha256": item.sha256, "sizeBytes": item.size + 1, "mime": "image/png",
        "filename": "c.png"})
    assert response.status_code == 409
    assert error_code(response) == "media.conflict"


def test_upload_url_is_rate_limited_per_user(make_tenant: Callable[..., str],
                                             make_user: UserFactory, tmp_path: Path) -> None:
    tenant = make_tenant()
    carol, dave = make_user(tenant, "carol"), make_user(tenant, "dave")
    statuses = []
    for index in range(31):
        item = _bytes_media(tmp_path, b"\x89PNG\r\n\x1a\n" + str(index).encode() * 20,
                            "image/png", "image", f"r{index}.png")
        response = carol.client.post("/api/v1/media/upload-url", json={
            "sha256": item.sha256, "sizeBytes": item.size, "mime": "image/png",
            "filename": item.path.name})
        statuses.append(response.status_code)
    assert statuses[:30] == [200] * 30
    assert statuses[30] == 429
    assert error_code(response) == "rate.limited"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Limit"] == "30"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    # Another user of the same tenant is not affected.
    item = _bytes_media(tmp_path, b"\x89PNG\r\n\x1a\ndave", "image/png", "image", "dave.png")
    assert dave.upload_url(item)["uploadRequired"] is True


def test_unknown_tenant_and_missing_token(make_tenant: Callable[..., str],
                                          make_user: UserFactory, api_url: str) -> None:
    stranger = make_user(make_tenant(labelled=False))
    response = stranger.client.get("/api/v1/media")
    assert response.status_code == 403
    assert error_code(response) == "auth.forbidden"
    anonymous = httpx.get(f"{api_url}/api/v1/media")
    assert anonymous.status_code == 401
    assert error_code(anonymous) == "auth.unauthenticated"
    forged = httpx.get(f"{api_url}/api/v1/media", headers={"Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401
    assert error_code(forged) == "auth.unauthenticated"
