"""Web playback through FastAPI's TestClient over in-memory stores: the two CORS policies,
the storyboard served with a presigned sprite, the player page and its refusals."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import webvtt
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from mediaplane.api.app import create_app
from mediaplane.api.context import ApiContext
from mediaplane.api.settings import ApiSettings
from mediaplane.core import keys, names
from mediaplane.core.objects import FormUpload
from mediaplane.core.resources import VariantStatus
from mediaplane.core.tasks import MediaKind
from mediaplane.devcluster.tokens import mint_dev_token
from tests.middle.test_api_routes import MEDIA_PLAYLIST, MERGED_MPD
from tests.support.memkube import MemoryAssets, MemoryObjects, MemoryTenants
from tests.support.resources import playable_status

SECRET = "s" * 40
APP = "https://app.example.test"
STORYBOARD_VTT = """WEBVTT

00:00:00.000 --> 00:00:02.000
storyboard.jpg#xywh=0,0,160,90

00:00:02.000 --> 00:00:04.000
storyboard.jpg#xywh=160,0,160,90
"""
EXPOSED = {"x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
           "retry-after"}


@dataclass
class Web:
    client: TestClient
    assets: MemoryAssets
    objects: MemoryObjects

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_dev_token(SECRET, 'acme', 'alice', 600)}",
                **extra}

    def video(self) -> dict[str, Any]:
        """A playable video with a poster and a storyboard; its GET as the user sees it."""
        sha = hashlib.sha256(b"web").hexdigest()
        grant = self.client.post("/api/v1/media/upload-url", headers=self.headers(), json={
            "sha256": sha, "sizeBytes": 1000, "mime": "video/mp4", "filename": "clip.mp4"})
        data = grant.json()["data"]
        asset_id = data["assetId"]
        etag = self.objects.upload(FormUpload(data["uploadUrl"], data["uploadFields"]),
                                   b"\x00" * 1000)
        self.client.post(f"/api/v1/media/{asset_id}/finalize", headers=self.headers(),
                         json={"etag": etag})
        prefix = keys.asset_prefix("acme", asset_id)
        extra = [VariantStatus.model_validate({
            "name": name, "type": name, "state": "succeeded", "width": 160, "height": 90,
            "file": f"{prefix}variants/{name}/{file}"})
            for name, file in (("poster", "poster.jpg"), ("storyboard", "storyboard.vtt"))]
        self.assets.set_status("acme", names.name_from_asset_id(asset_id),
                               playable_status("acme", asset_id, *extra))
        self.objects.put(f"{prefix}variants/storyboard/storyboard.vtt", STORYBOARD_VTT.encode())
        self.objects.put(f"{prefix}variants/240p/media_0.m3u8", MEDIA_PLAYLIST.encode())
        self.objects.put(f"{prefix}manifest.mpd", MERGED_MPD.encode())
        body: dict[str, Any] = self.client.get(f"/api/v1/media/{asset_id}",
                                               headers=self.headers()).json()["data"]
        return body


@pytest.fixture
def web() -> Iterator[Web]:
    assets, objects = MemoryAssets(), MemoryObjects()
    settings = ApiSettings(jwt_secret=SecretStr(SECRET), stream_signing_key=SecretStr("k" * 40),
                           cors_allowed_origins=f"{APP}, http://localhost:3000/")

    async def context(settings: ApiSettings) -> ApiContext:
        return ApiContext.with_settings(settings, assets=assets,
                                        tenants=MemoryTenants({"acme": 10_000}), storage=objects)

    with TestClient(create_app(settings, context)) as client:
        yield Web(client, assets, objects)


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def exposed(headers: Any) -> set[str]:
    return {h.strip().lower() for h in headers["access-control-expose-headers"].split(",")}


def test_json_api_preflight_from_an_allowed_origin_is_204(web: Web) -> None:
    for origin in (APP, "http://localhost:3000"):
        answer = web.client.options("/api/v1/media/upload-url", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert answer.status_code == 204, answer.text
        assert answer.content == b""
        assert answer.headers["access-control-allow-origin"] == origin
        assert "POST" in answer.headers["access-control-allow-methods"]
        allowed = answer.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed
        assert "content-type" in allowed
        assert "access-control-allow-credentials" not in answer.headers


def test_json_api_refuses_other_origins_in_the_envelope(web: Web) -> None:
    answer = web.client.options("/api/v1/media", headers={
        "Origin": "https://evil.test", "Access-Control-Request-Method": "GET"})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "cors.forbidden"
    assert answer.json()["error"]["requestId"] == answer.headers["x-request-id"]
    assert "access-control-allow-origin" not in answer.headers
    plain = web.client.get("/api/v1/media", headers=web.headers(Origin="https://evil.test"))
    assert plain.status_code == 200, "CORS is the browser's to enforce; the answer is the same"
    assert "access-control-allow-origin" not in plain.headers


def test_json_api_answers_expose_the_request_id_and_rate_limits(web: Web) -> None:
    answer = web.client.post("/api/v1/media/upload-url", headers=web.headers(Origin=APP), json={
        "sha256": "a" * 64, "sizeBytes": 10, "mime": "video/mp4", "filename": "a.mp4"})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == APP
    assert "Origin" in answer.headers["vary"]
    assert exposed(answer.headers) >= EXPOSED
    assert answer.headers["x-ratelimit-remaining"]
    error = web.client.get("/api/v1/media/nope", headers={"Origin": APP})
    assert error.status_code in (401, 404, 422)
    assert error.headers["access-control-allow-origin"] == APP, "errors are readable too"


def test_stream_routes_and_the_player_answer_any_origin(web: Web) -> None:
    video = web.video()
    for url in (video["streams"]["hls"], video["streams"]["dash"], video["player"],
                next(v["url"] for v in video["variants"] if v["type"] == "storyboard")):
        path = local(url)
        preflight = web.client.options(path, headers={
            "Origin": "https://anyone.test", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range"})
        assert preflight.status_code == 204, (path, preflight.text)
        assert preflight.headers["access-control-allow-origin"] == "*"
        answer = web.client.get(path, headers={"Origin": "https://anyone.test"})
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in answer.headers
        assert "x-request-id" in exposed(answer.headers)
    refused = web.client.get(local(video["streams"]["hls"]).split("token=")[0] + "token=x",
                             headers={"Origin": "https://anyone.test"})
    assert refused.status_code == 403
    assert refused.headers["access-control-allow-origin"] == "*", "a player reads the 403"


def test_storyboard_is_listed_and_served_with_a_presigned_sprite(web: Web) -> None:
    video = web.video()
    board = next(v for v in video["variants"] if v["type"] == "storyboard")
    assert "/stream/storyboard.vtt?token=" in board["url"]
    answer = web.client.get(local(board["url"]))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/vtt")
    cues = webvtt.from_string(answer.text).captions
    prefix = keys.asset_prefix("acme", video["id"])
    sprite = web.objects.presign_get(f"{prefix}variants/storyboard/storyboard.jpg", 0)
    assert [c.text.split("?")[0] for c in cues] == [sprite.split("?")[0]] * 2
    assert [c.text.rsplit("#", 1)[1] for c in cues] == ["xywh=0,0,160,90", "xywh=160,0,160,90"]
    assert [(c.start, c.end) for c in cues] == [("00:00:00.000", "00:00:02.000"),
                                                ("00:00:02.000", "00:00:04.000")]


def test_player_page_config_and_refusals(web: Web) -> None:
    video = web.video()
    assert video["player"].startswith("http://127.0.0.1:8080/player/")
    page = web.client.get(local(video["player"]), headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "/player/static/vendor/hls.min.js" in page.text
    assert "/variants/poster/poster.jpg" in page.text
    assert "/stream/storyboard.vtt?token=" in page.text
    dash = web.client.get(local(video["player"]) + "&engine=dash",
                          headers={"Accept": "text/html"})
    assert "/player/static/vendor/dash.all.min.js" in dash.text
    bad = local(video["player"]).split("token=")[0] + "token=tampered"
    html = web.client.get(bad, headers={"Accept": "text/html"})
    assert html.status_code == 403
    assert 'data-code="stream.signature.invalid"' in html.text
    assert "<video" not in html.text
    assert "player.js" not in html.text
    json = web.client.get(bad, headers={"Accept": "application/json"})
    assert json.json()["error"]["code"] == "stream.signature.invalid"
    assert web.client.get("/player/static/player.js").status_code == 200


def test_player_config_cannot_break_out_of_its_script() -> None:
    from mediaplane.api import player

    config = player.PlayerConfig(asset_id="mda_x", kind=MediaKind.VIDEO,
                                 engine=player.Engine.HLS, title="</script><script>alert(1)")
    page = player.render(config)
    assert "</script><script>alert(1)" not in page
    assert page.count("<script") == 3  # the config, the engine, player.js


def test_origin_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        ApiSettings(jwt_secret=SecretStr(SECRET), stream_signing_key=SecretStr("k" * 40),
                    cors_allowed_origins="https://app.test/path")
