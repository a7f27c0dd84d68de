"""The REST routes with FastAPI's TestClient over in-memory stores: auth, tenancy, uploads,
errors, pagination, captions and signed manifests, with no server. The same contract runs
for real over HTTP in tests/api."""

from __future__ import annotations

import hashlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlsplit

import jwt
import m3u8
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from mediaplane.api import models, presented, signing
from mediaplane.api.app import create_app
from mediaplane.api.auth import Principal
from mediaplane.api.context import ApiContext
from mediaplane.api.routers.uploads import dedup_asset_id
from mediaplane.api.settings import ApiSettings
from mediaplane.api.views import Presenter
from mediaplane.core import keys, names
from mediaplane.core.manifests import dash
from mediaplane.core.objects import FormUpload
from mediaplane.core.resources import MediaAssetStatus
from mediaplane.devcluster.tokens import mint_dev_token
from tests.support.memkube import MemoryAssets, MemoryObjects, MemoryTenants
from tests.support.resources import playable_status

SECRET = "s" * 40
SHA = hashlib.sha256(b"clip").hexdigest()
MEDIA_PLAYLIST = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:4
#EXT-X-MAP:URI="init.m4s"
#EXTINF:4.000000,
seg-00001.m4s
#EXTINF:4.000000,
seg-00002.m4s
#EXT-X-ENDLIST
"""
MERGED_MPD = """<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT8S">
  <Period id="0"><AdaptationSet id="0" contentType="video">
    <Representation id="240p" mimeType="video/mp4" codecs="avc1" bandwidth="400000">
      <BaseURL>variants/240p/</BaseURL>
      <SegmentTemplate timescale="1000" initialization="init.m4s"
                       media="seg-$Number%05d$.m4s" startNumber="1">
        <SegmentTimeline><S t="0" d="4000" r="1"/></SegmentTimeline></SegmentTemplate>
    </Representation></AdaptationSet></Period></MPD>"""


@dataclass
class Api:
    client: TestClient
    assets: MemoryAssets
    tenants: MemoryTenants
    objects: MemoryObjects

    def headers(self, tenant: str = "acme", user: str = "alice", ttl: int = 600
                ) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_dev_token(SECRET, tenant, user, ttl)}"}

    def call(self, method: str, path: str, expect: int, *, tenant: str = "acme",
             user: str = "alice", **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=self.headers(tenant, user),
                                       **kwargs)
        assert response.status_code == expect, response.text
        body = response.json() if response.content else None
        if expect >= 400:
            assert body is not None
            assert body["error"]["requestId"] == response.headers["X-Request-ID"]
            return body["error"]["code"]
        return body

    def upload_url(self, sha: str = SHA, size: int = 1000, mime: str = "video/mp4",
                   **kwargs: Any) -> Any:
        return self.call("POST", "/api/v1/media/upload-url", kwargs.pop("expect", 200),
                         json={"sha256": sha, "sizeBytes": size, "mime": mime,
                               "filename": "clip é.mp4"}, **kwargs)

    def upload(self, sha: str = SHA, size: int = 1000, mime: str = "video/mp4",
               tenant: str = "acme", user: str = "alice") -> str:
        """upload-url, the form POST to storage, finalize: the new asset's id."""
        grant = self.upload_url(sha, size, mime, tenant=tenant, user=user)["data"]
        form = FormUpload(url=grant["uploadUrl"], fields=grant["uploadFields"])
        etag = self.objects.upload(form, b"\x00" * size)
        self.call("POST", f"/api/v1/media/{grant['assetId']}/finalize", 200,
                  json={"etag": etag}, tenant=tenant, user=user)
        return str(grant["assetId"])


@pytest.fixture
def api() -> Iterator[Api]:
    assets, objects = MemoryAssets(), MemoryObjects()
    tenants = MemoryTenants({"acme": 10_000, "other": 10_000})
    settings = ApiSettings(jwt_secret=SecretStr(SECRET),
                           stream_signing_key=SecretStr("k" * 40), upload_url_rate="5/minute")

    async def context(settings: ApiSettings) -> ApiContext:
        return ApiContext.with_settings(settings, assets=assets, tenants=tenants,
                                        storage=objects)

    with TestClient(create_app(settings, context)) as client:
        yield Api(client, assets, tenants, objects)


def test_callers_need_a_valid_token_of_a_tenant(api: Api) -> None:
    assert api.client.get("/api/v1/media").status_code == 401
    bad = api.client.get("/api/v1/media", headers={"Authorization": "Bearer nope"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "auth.unauthenticated")
    expired = api.client.get("/api/v1/media", headers=api.headers(ttl=-3600))
    assert expired.json()["error"]["code"] == "auth.unauthenticated"
    assert api.call("GET", "/api/v1/media", 403, tenant="not-a-tenant") == "auth.forbidden"


def test_upload_url_writes_nothing_and_finalize_makes_one_asset(api: Api) -> None:
    grant = api.upload_url()["data"]
    assert grant["assetId"] == dedup_asset_id("acme", SHA)
    assert (grant["uploadRequired"], grant["status"]) == (True, "pending")
    fields = grant["uploadFields"]
    assert fields["key"] == keys.source_key("acme", grant["assetId"])
    assert fields["x-amz-meta-mediaplane-sha256"] == SHA
    assert fields["x-amz-meta-mediaplane-filename"] == "clip%20%C3%A9.mp4"
    assert api.assets.items == {}, "an upload grant costs no Kubernetes write"
    assert api.upload_url()["data"]["assetId"] == grant["assetId"]

    asset_id = api.upload()
    assert asset_id == grant["assetId"]
    stored = api.assets.items[("acme", names.name_from_asset_id(asset_id))]
    assert stored["spec"]["source"] == {"origin": "upload", "etag": "etag-1000",
                                        "key": keys.source_key("acme", asset_id)}
    assert (stored["spec"]["sha256"], stored["spec"]["sizeBytes"]) == (SHA, 1000)
    assert stored["spec"]["filename"] == "clip é.mp4"
    assert stored["metadata"]["finalizers"] == [names.FINALIZER]
    assert stored["metadata"]["annotations"] == {names.UPLOADED_BY_ANNOTATION: "alice"}
    again = api.upload_url()["data"]
    assert (again["assetId"], again["uploadRequired"], again["uploadUrl"]) == (
        asset_id, False, None)
    other = api.upload(tenant="other")
    assert other != asset_id, "dedup never crosses tenants"
    assert len(api.assets.items) == 2
    assert api.upload_url(size=999, expect=409) == "media.conflict"


def test_upload_url_refusals_are_in_the_contract(api: Api) -> None:
    assert api.upload_url(mime="application/pdf", expect=422) == \
        "validation.mime.unsupported"
    assert api.upload_url(size=10_001, expect=422) == "validation.size.exceeds_limit"
    assert api.upload_url(size=999, expect=200)["data"]["uploadRequired"] is True
    api.upload_url(sha="b" * 64)
    api.upload_url(sha="c" * 64)
    response = api.client.post("/api/v1/media/upload-url", headers=api.headers(), json={
        "sha256": "d" * 64, "sizeBytes": 5, "mime": "video/mp4", "filename": "x.mp4"})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate.limited"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_finalize_checks_the_stored_object(api: Api) -> None:
    grant = api.upload_url()["data"]
    asset_id = grant["assetId"]
    path = f"/api/v1/media/{asset_id}/finalize"
    assert api.call("POST", path, 404, json={"etag": "x"}) == "media.not_found"
    key = keys.source_key("acme", asset_id)
    api.objects.put(key, b"\x00" * 1000)  # not through a grant: no declaration
    assert api.call("POST", path, 409, json={"etag": "etag-1000"}) == "upload.mismatch"
    etag = api.objects.upload(FormUpload(grant["uploadUrl"], grant["uploadFields"]),
                              b"\x00" * 1000)
    assert api.call("POST", path, 409, json={"etag": "wrong"}) == "upload.mismatch"
    body = api.call("POST", path, 200, json={"etag": f'"{etag}"'})["data"]
    assert (body["id"], body["status"], body["source"]) == (asset_id, "pending", "upload")
    assert api.call("POST", path, 200, json={"etag": etag})["data"]["id"] == asset_id
    assert api.call("POST", path, 409, json={"etag": "etag-5"}) == "upload.mismatch"
    assert len(api.assets.items) == 1
    assert api.upload_url()["data"]["uploadRequired"] is False


def test_another_tenants_asset_is_not_found_on_every_route(api: Api) -> None:
    asset_id = api.upload()
    for method, path in [("GET", ""), ("DELETE", ""), ("GET", "/variants"),
                         ("GET", "/captions"), ("GET", "/transcript")]:
        code = api.call(method, f"/api/v1/media/{asset_id}{path}", 404, tenant="other")
        assert code == "media.not_found", path
    assert ("acme", names.name_from_asset_id(asset_id)) in api.assets.items


def test_list_pages_with_cursors_bound_to_filters(api: Api) -> None:
    ids = {api.upload(sha=f"{i:064x}", user=f"u{i}") for i in range(7)}
    api.upload(sha="f" * 64, mime="image/png", user="u9")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"page[size]": "3", "filter[kind]": "video"}
        if cursor:
            params["cursor"] = cursor
        page = api.call("GET", "/api/v1/media", 200, params=params)
        seen += [a["id"] for a in page["data"]]
        cursor = page.get("nextCursor")
        if not cursor:
            break
        reused = api.call("GET", "/api/v1/media", 422,
                          params={"page[size]": "3", "cursor": cursor})
        assert reused == "validation.cursor"
    assert sorted(seen) == sorted(ids)
    assert api.call("GET", "/api/v1/media", 422, params={"page[size]": "0"}) == \
        "validation.page_size"
    assert api.call("GET", "/api/v1/media", 422, params={"cursor": "garbage"}) == \
        "validation.cursor"


def test_a_store_that_does_not_answer_is_503_with_retry_after(api: Api) -> None:
    asset_id = api.upload()
    api.assets.down = True
    response = api.client.get(f"/api/v1/media/{asset_id}", headers=api.headers())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["Retry-After"]
    api.tenants.down = True
    assert api.client.get("/readyz").json()["error"]["code"] == "unavailable"


def make_playable(api: Api, asset_id: str) -> None:
    prefix = keys.asset_prefix("acme", asset_id)
    api.assets.set_status("acme", names.name_from_asset_id(asset_id),
                          playable_status("acme", asset_id))
    api.objects.put(prefix + "variants/240p/media_0.m3u8", MEDIA_PLAYLIST.encode())
    api.objects.put(prefix + "manifest.mpd", MERGED_MPD.encode())


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _claims(link: str) -> dict[str, Any]:
    token = link.split("token=")[1]
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _presented_counts(api: Api) -> dict[str, float]:
    scraped = api.client.get("/metrics").text
    return {sample.labels["result"]: sample.value
            for family in text_string_to_metric_families(scraped)
            if family.name == "mediaplane_api_presented_assets"
            for sample in family.samples}


def test_a_polled_page_is_the_models_json_and_follows_the_asset_the_caller_and_the_minute(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Presented assets are kept per caller, asset version and minute (`api.presented`):
    a repeat is the same answer, and none of the three can go stale in it."""
    asset_id = api.upload()
    make_playable(api, asset_id)
    counted = _presented_counts(api)
    first = api.client.get("/api/v1/media", headers=api.headers())
    assert first.headers["content-type"] == "application/json"
    listed = first.json()
    stored = api.assets.cached("acme", names.name_from_asset_id(asset_id))
    assert stored is not None
    context = cast(FastAPI, api.client.app).state.context
    assert listed == models.ListEnvelope[models.MediaAsset](
        data=[Presenter(context, Principal("acme", "alice")).asset(stored)],
    ).model_dump(mode="json", by_alias=True)
    assert listed["nextCursor"] is None
    one = api.call("GET", f"/api/v1/media/{asset_id}", 200)
    assert one["data"] == listed["data"][0]
    assert api.client.get("/api/v1/media", headers=api.headers()).content == first.content
    # What /metrics says of it: made once, then kept for the get and the repeat.
    assert _presented_counts(api) == {"made": counted["made"] + 1, "kept": counted["kept"] + 2}

    # Another user of the tenant gets links of their own, never alice's kept ones.
    bobs = api.call("GET", "/api/v1/media", 200, user="bob")["data"][0]
    assert _claims(bobs["streams"]["hls"])["sub"] == "bob"
    assert _claims(listed["data"][0]["streams"]["hls"])["sub"] == "alice"

    # The asset changes: the next poll shows it.
    name = names.name_from_asset_id(asset_id)
    status = playable_status("acme", asset_id).model_copy(update={"playable": False})
    api.assets.set_status("acme", name, status)
    changed = api.call("GET", "/api/v1/media", 200)["data"][0]
    assert (changed["playable"], changed["streams"]) == (False, None)

    # A minute later the links are issued again, with a later expiry.
    make_playable(api, asset_id)
    before = _claims(api.call("GET", "/api/v1/media", 200)["data"][0]["streams"]["hls"])
    minute_later = time.time() + 60
    later_clock = SimpleNamespace(time=lambda: minute_later)
    for module in (signing, presented):  # not the bearer's clock
        monkeypatch.setattr(module, "time", later_clock)
    later = _claims(api.call("GET", "/api/v1/media", 200)["data"][0]["streams"]["hls"])
    assert later["exp"] == before["exp"] + 60


def test_signed_manifests_from_status_and_storage(api: Api) -> None:
    asset_id = api.upload()
    assert api.call("GET", f"/api/v1/media/{asset_id}", 200)["data"]["streams"] is None
    make_playable(api, asset_id)
    streams = api.call("GET", f"/api/v1/media/{asset_id}", 200)["data"]["streams"]

    reads_before = api.objects.calls["get_text"]
    master = api.client.get(local(streams["hls"]))
    assert master.status_code == 200
    assert api.objects.calls["get_text"] == reads_before, "the master needs no storage read"
    parsed = m3u8.loads(master.text)
    media_url = parsed.playlists[0].uri
    assert "/stream/hls/240p/index.m3u8?token=" in media_url

    for _ in range(3):
        media = api.client.get(local(media_url))
        assert media.status_code == 200
    assert api.objects.calls["get_text"] == reads_before + 1, "rendered once, then cached"
    segments = m3u8.loads(media.text).segments
    assert [urlsplit(s.uri).path.rsplit("/", 1)[-1] for s in segments] == [
        "seg-00001.m4s", "seg-00002.m4s"]

    mpd = ET.fromstring(api.client.get(local(streams["dash"])).text)  # noqa: S314 (ours)
    ns = {"d": dash.DASH_NS}
    entries = mpd.findall(".//d:SegmentList/d:SegmentTimeline/d:S", ns)
    assert [(s.get("t"), s.get("r")) for s in entries] == [("0", None), ("4000", None)]

    token = streams["hls"].split("token=")[1]
    other = api.upload(sha="e" * 64)
    replay = api.client.get(f"/api/v1/media/{other}/stream/hls/all/index.m3u8?token={token}")
    assert replay.json()["error"]["code"] == "stream.signature.invalid"
    nobody = api.client.get(f"/api/v1/media/{asset_id}/stream/hls/all/index.m3u8")
    assert nobody.json()["error"]["code"] == "stream.signature.invalid"


def test_streams_of_an_unplayable_or_quarantined_asset_are_refused(api: Api) -> None:
    asset_id = api.upload()
    name = names.name_from_asset_id(asset_id)
    make_playable(api, asset_id)
    streams = api.call("GET", f"/api/v1/media/{asset_id}", 200)["data"]["streams"]
    api.assets.set_status("acme", name, MediaAssetStatus.model_validate({
        "phase": "processing", "playable": False}))
    pending = api.client.get(local(streams["hls"]))
    assert (pending.status_code, pending.json()["error"]["code"]) == (409, "media.transcoding")
    assert pending.headers["Retry-After"]
    api.assets.set_status("acme", name, MediaAssetStatus.model_validate({
        "phase": "quarantined", "quarantine": {"reason": "Polyglot", "message": "no"}}))
    withheld = api.client.get(local(streams["dash"]))
    assert (withheld.status_code, withheld.json()["error"]["code"]) == (451,
                                                                        "media.quarantined")
    assert api.call("GET", f"/api/v1/media/{asset_id}", 200)["data"]["quarantineReason"] == \
        "Polyglot"


def test_srt_captions_are_stored_as_webvtt_and_listed(api: Api) -> None:
    asset_id = api.upload()
    srt = "1\n00:00:01,000 --> 00:00:02,500\nHello\n"
    created = api.call("POST", f"/api/v1/media/{asset_id}/captions", 201,
                       json={"language": "en-US", "content": srt, "label": "English"})["data"]
    assert (created["language"], created["approved"], created["source"]) == ("en-US", True,
                                                                            "manual")
    key = keys.caption_key("acme", asset_id, "en-US")
    assert api.objects.get_text(key).startswith("WEBVTT")
    listed = api.call("GET", f"/api/v1/media/{asset_id}/captions", 200)["data"]
    assert [(c["language"], c["label"]) for c in listed] == [("en-US", "English")]
    assert api.call("POST", f"/api/v1/media/{asset_id}/captions", 422,
                    json={"language": "en-US", "content": "garbage"}) == "validation.caption"
    assert api.call("POST", f"/api/v1/media/{asset_id}/captions", 422,
                    json={"language": "not a tag", "content": srt}) == "validation.invalid"
