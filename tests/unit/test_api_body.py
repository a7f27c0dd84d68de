"""Bodies read without FastAPI's machinery: the same errors, and still documented."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import SecretStr

from mediaplane.api import models
from mediaplane.api.app import create_app
from mediaplane.api.body import json_response, read_model
from mediaplane.api.settings import ApiSettings
from mediaplane.core.states import AssetPhase

VALID = {"sha256": "a" * 64, "sizeBytes": 10, "mime": "video/mp4", "filename": "a.mp4"}


def request(body: bytes, content_type: str | None = "application/json") -> Request:
    headers = [(b"content-type", content_type.encode())] if content_type else []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers,
                    "query_string": b""}, receive)


async def test_a_valid_body_becomes_the_model() -> None:
    body = await read_model(request(json.dumps(VALID).encode(),
                                    "application/json; charset=utf-8"),
                            models.UploadUrlRequest)
    assert (body.sha256, body.size_bytes, body.kind) == ("a" * 64, 10, None)


@pytest.mark.parametrize(("raw", "content_type", "error_type", "loc"), [
    (b"{not json", "application/json", "json_invalid", ("body",)),
    (b"", "application/json", "missing", ("body",)),
    (json.dumps(VALID).encode(), "text/plain", "model_attributes_type", ("body",)),
    (json.dumps(VALID).encode(), None, "model_attributes_type", ("body",)),
    (b"[1, 2]", "application/json", "model_type", ("body",)),
    (json.dumps({**VALID, "sizeBytes": 0}).encode(), "application/problem+json",
     "greater_than", ("body", "sizeBytes")),
    (json.dumps({**VALID, "extra": 1}).encode(), "application/json", "extra_forbidden",
     ("body", "extra")),
])
async def test_bad_bodies_raise_what_fastapi_raises(raw: bytes, content_type: str | None,
                                                    error_type: str,
                                                    loc: tuple[str, ...]) -> None:
    with pytest.raises(RequestValidationError) as raised:
        await read_model(request(raw, content_type), models.UploadUrlRequest)
    first = raised.value.errors()[0]
    assert first["type"] == error_type
    assert tuple(first["loc"]) == loc


def test_the_response_uses_the_wire_names() -> None:
    grant = models.UploadUrlResponse(asset_id="mda_x", upload_url=None, upload_fields={},
                                     expires_at=None, upload_required=False,
                                     status=AssetPhase.READY)
    response = json_response(models.Envelope(data=grant), {"X-RateLimit-Limit": "30"})
    assert json.loads(bytes(response.body))["data"]["uploadRequired"] is False
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-ratelimit-limit"] == "30"


def test_the_route_still_documents_its_body_and_bearer() -> None:
    app = create_app(ApiSettings(jwt_secret=SecretStr("s" * 32),
                                 stream_signing_key=SecretStr("k" * 40)))
    document = app.openapi()
    operation = document["paths"]["/api/v1/media/upload-url"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert operation["requestBody"]["required"] is True
    assert set(schema["required"]) == {"sha256", "sizeBytes", "mime", "filename"}
    assert schema["additionalProperties"] is False
    assert operation["security"] == [{"HTTPBearer": []}]
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    # Every reference in the document resolves (the body's enum is a shared component).
    text = json.dumps(document)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"]


def test_the_stream_routes_still_document_their_optional_bearer() -> None:
    """The playlist and MPD routes read their caller without FastAPI's dependencies
    (`deps.stream_caller`); their operations say what they check all the same."""
    app = create_app(ApiSettings(jwt_secret=SecretStr("s" * 32),
                                 stream_signing_key=SecretStr("k" * 40)))
    paths = app.openapi()["paths"]
    for path in ("/api/v1/media/{asset_id}/stream/hls/{variant}/index.m3u8",
                 "/api/v1/media/{asset_id}/stream/dash/{variant}.mpd"):
        operation = paths[path]["get"]
        assert operation["security"] == [{"HTTPBearer": []}]
        assert [p["name"] for p in operation["parameters"]] == ["asset_id", "variant", "token"]
        # A bad or expired link (403), no such asset (404), not playable yet (409).
        assert {"200", "403", "404", "409"} <= set(operation["responses"]), path
