"""A REST client as a user of mediaplane would write one: httpx, a bearer token, and a
browser-style multipart POST of the file to the presigned URL."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.media import Media


class ApiCallError(AssertionError):
    pass


@dataclass
class ApiUser:
    base_url: str
    tenant: str
    user: str
    token: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=30.0,
                                   headers={"Authorization": f"Bearer {self.token}"})

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        if response.status_code != expect:
            raise ApiCallError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def upload_url(self, item: Media, **overrides: Any) -> dict[str, Any]:
        body = {"sha256": item.sha256, "sizeBytes": item.size, "mime": item.mime,
                "filename": item.path.name, **overrides}
        data: dict[str, Any] = self.call("POST", "/api/v1/media/upload-url", json=body)["data"]
        return data

    def finalize(self, asset_id: str, etag: str, expect: int = 200) -> Any:
        return self.call("POST", f"/api/v1/media/{asset_id}/finalize", expect=expect,
                         json={"etag": etag})

    def get(self, asset_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", f"/api/v1/media/{asset_id}")["data"]
        return data

    def upload(self, item: Media) -> str:
        """upload-url, the form POST to storage, finalize: the asset id."""
        grant = self.upload_url(item)
        if grant["uploadRequired"]:
            etag = post_form(grant, item.data, item.path.name)
            self.finalize(grant["assetId"], etag)
        return str(grant["assetId"])

    def wait_status(self, asset_id: str, status: str, timeout: float = 240.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        asset = self.get(asset_id)
        while asset["status"] != status:
            if asset["status"] in ("failed", "quarantined") and status != asset["status"]:
                raise ApiCallError(f"{asset_id} went {asset['status']}: {asset}")
            if time.monotonic() > deadline:
                raise ApiCallError(f"{asset_id} not {status} after {timeout}s: {asset}")
            time.sleep(0.5)
            asset = self.get(asset_id)
        return asset


def post_form(grant: dict[str, Any], data: bytes, filename: str,
              fields: dict[str, str] | None = None) -> str:
    """POSTs like a browser form: the policy fields first, the file last. Returns the ETag."""
    response = form_response(grant, data, filename, fields)
    if response.status_code not in (200, 201, 204):
        raise ApiCallError(f"storage refused the upload: {response.status_code} {response.text}")
    return response.headers["ETag"].strip('"')


def form_response(grant: dict[str, Any], data: bytes, filename: str,
                  fields: dict[str, str] | None = None) -> httpx.Response:
    form = dict(grant["uploadFields"]) if fields is None else fields
    return httpx.post(grant["uploadUrl"], data=form,
                      files={"file": (filename, data, form.get("Content-Type",
                                                               "application/octet-stream"))},
                      timeout=60.0)


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["requestId"], body
    return str(body["error"]["code"])
