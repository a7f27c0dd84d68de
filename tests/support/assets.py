"""Driving MediaAssets the way a kubectl user does: put the object, apply the manifest, watch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from mediaplane.core import keys, names
from mediaplane.core.resources import MediaAsset
from mediaplane.core.tasks import MediaKind
from tests.support.wait import eventually

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from tests.support.media import Media


def manifest(tenant: str, asset_id: str, item: Media, *, sha256: str | None = None,
             key: str | None = None, kind: str | None = None,
             mime: str | None = None) -> dict[str, Any]:
    """The body `kubectl apply` would send for `item` (overrides make it wrong on purpose)."""
    known = kind is None or kind in {k.value for k in MediaKind}
    body = MediaAsset.new(tenant, asset_id, kind=MediaKind(kind if known and kind else item.kind),
                          mime=mime or item.mime, sha256=sha256 or item.sha256,
                          size_bytes=item.size, filename=item.path.name,
                          source_key=key).to_body()
    if not known:
        body["spec"]["kind"] = kind  # a kind no model allows: for the API server to refuse
    return body


class Assets:
    def __init__(self, api: k8s.ApiClient, s3: S3Client, bucket: str) -> None:
        self.custom = k8s.CustomObjectsApi(api)
        self.batch = k8s.BatchV1Api(api)
        self.core = k8s.CoreV1Api(api)
        self.s3 = s3
        self.bucket = bucket

    def upload(self, tenant: str, item: Media, *, asset_id: str | None = None,
               **overrides: Any) -> dict[str, Any]:
        """Puts the bytes under the asset's prefix and creates the MediaAsset."""
        asset_id = asset_id or names.new_asset_id()
        self.s3.put_object(Bucket=self.bucket, Key=keys.source_key(tenant, asset_id),
                           Body=item.data, ContentType=item.mime)
        return self.create(manifest(tenant, asset_id, item, **overrides))

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            names.GROUP, names.VERSION, body["metadata"]["namespace"], names.ASSET_PLURAL, body)
        return created

    def get(self, tenant: str, name: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = self.custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, tenant, names.ASSET_PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return body

    def wait(self, tenant: str, name: str, predicate: Callable[[dict[str, Any]], bool],
             timeout: float = 180, what: str = "condition") -> dict[str, Any]:
        def satisfied() -> dict[str, Any] | None:
            body = self.get(tenant, name)
            return body if body is not None and predicate(body) else None

        return eventually(satisfied, f"{what} of {tenant}/{name}", timeout=timeout,
                          explain=lambda: (self.get(tenant, name) or {}).get("status"))

    def wait_phase(self, tenant: str, name: str, phase: str, timeout: float = 180,
                   complete: bool = False) -> dict[str, Any]:
        def done(body: dict[str, Any]) -> bool:
            status = body.get("status") or {}
            if status.get("phase") != phase:
                return False
            return not complete or condition(body, "Complete") == "True"
        return self.wait(tenant, name, done, timeout, f"phase {phase}")

    def transcode_jobs(self, tenant: str, name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_namespaced_custom_object(
            names.GROUP, names.VERSION, tenant, names.JOB_PLURAL,
            label_selector=f"{names.LABEL_ASSET}={name}")["items"]
        return items

    def jobs(self, tenant: str, name: str) -> list[Any]:
        items: list[Any] = self.batch.list_namespaced_job(
            tenant, label_selector=f"{names.LABEL_ASSET}={name}").items
        return items

    def keys_under(self, prefix: str) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [obj["Key"] for obj in listing.get("Contents", [])]

    def events(self, tenant: str, name: str) -> list[tuple[str, str]]:
        items = self.core.list_namespaced_event(
            tenant, field_selector=f"involvedObject.name={name}").items
        return [(e.reason, e.message) for e in items]


def condition(body: dict[str, Any], type_: str) -> str | None:
    for cond in (body.get("status") or {}).get("conditions", []):
        if cond["type"] == type_:
            return str(cond["status"])
    return None


def reason(body: dict[str, Any], type_: str) -> str | None:
    for cond in (body.get("status") or {}).get("conditions", []):
        if cond["type"] == type_:
            return str(cond["reason"])
    return None
