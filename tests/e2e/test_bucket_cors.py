"""The bucket's CORS rules on the real S3 server (SeaweedFS): the dev environment sets
mediaplane's rules explicitly (SeaweedFS would otherwise answer every origin and method),
and the operator's own call sets an install's rules the same way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from mediaplane.core import bucketcors
from mediaplane.core.settings import S3Settings
from mediaplane.core.storage import Storage
from mediaplane.devcluster import seaweed
from mediaplane.devcluster.cluster import DevCluster
from tests.conftest import OperatorHandle
from tests.support.wait import eventually

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

APP = "https://app.example.test"


@pytest.fixture
def segment(s3: S3Client, bucket: str) -> Iterator[str]:
    """A presigned GET of a small object, as a manifest hands it to a player."""
    key = f"tenants/cors-{uuid.uuid4().hex[:8]}/assets/x/seg-00001.m4s"
    s3.put_object(Bucket=bucket, Key=key, Body=b"0123456789" * 10, ContentType="video/mp4")
    yield s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                    ExpiresIn=600)
    s3.delete_object(Bucket=bucket, Key=key)


def _cors(response: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()
            if k.lower().startswith("access-control-")}


def _preflight(url: str, origin: str, method: str, headers: str = "") -> httpx.Response:
    extra = {"Access-Control-Request-Headers": headers} if headers else {}
    return httpx.options(url, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                       **extra})


def test_the_dev_bucket_answers_playback_from_any_origin_and_nothing_else(
        s3: S3Client, bucket: str, segment: str) -> None:
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert [(r["AllowedMethods"], r["AllowedOrigins"], r["AllowedHeaders"]) for r in rules] == \
        [(["GET", "HEAD"], ["*"], ["Range"])]
    ranged = httpx.get(segment, headers={"Origin": APP, "Range": "bytes=0-9"})
    assert ranged.status_code == 206
    cors = _cors(ranged)
    assert cors["access-control-allow-origin"] in ("*", APP)
    exposed = {h.strip().lower() for h in cors["access-control-expose-headers"].split(",")}
    assert {"content-length", "content-range", "etag"} <= exposed
    preflight = _preflight(segment, APP, "GET", "range")
    assert preflight.status_code in (200, 204)
    assert "range" in _cors(preflight)["access-control-allow-headers"].lower()
    for method in ("PUT", "DELETE", "POST"):
        # SeaweedFS answers the preflight, but allows only the rule's methods: a browser
        # sends none of these.
        allowed = _cors(_preflight(segment, APP, method)).get("access-control-allow-methods", "")
        assert method not in {m.strip() for m in allowed.split(",")}, (method, allowed)


def test_the_operator_set_the_rules_at_start_up(operator: OperatorHandle) -> None:
    process = operator.process
    assert process is not None
    eventually(lambda: "bucket mediaplane: CORS rules set" in process.log_path.read_text(),
               "the operator's start-up to set the rules", timeout=60,
               explain=lambda: process.log_tail(30))


def test_the_operators_rules_allow_uploads_from_configured_origins_only(
        cluster: DevCluster, s3: S3Client, bucket: str, segment: str) -> None:
    env = cluster.env()
    storage = Storage(S3Settings(endpoint=env["MEDIAPLANE_S3_ENDPOINT"], bucket=bucket),
                      (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]))
    try:
        storage.configure_cors(bucketcors.rules([APP], [APP]))
        assert [r["AllowedOrigins"] for r in s3.get_bucket_cors(Bucket=bucket)["CORSRules"]] \
            == [[APP], [APP]]
        # The S3 gateway caches a bucket's configuration for a moment.
        eventually(lambda: _cors(httpx.get(segment, headers={"Origin": APP})).get(
            "access-control-allow-origin") == APP, "the new rules to apply", timeout=30)
        assert "access-control-allow-origin" not in _cors(
            httpx.get(segment, headers={"Origin": "https://elsewhere.test"}))
        # The upload rule is stored as set. (A browser's form POST goes to the bucket
        # itself, which SeaweedFS 4.48 answers from its server-wide default, any origin and
        # method, rather than from the bucket's rules; AWS S3 applies the rules.)
        upload = s3.get_bucket_cors(Bucket=bucket)["CORSRules"][1]
        assert (upload["AllowedMethods"], upload["ExposeHeaders"]) == (["POST"], ["ETag"])
    finally:
        seaweed.ensure_cors(s3, bucket)  # the dev rules again, for the other tests
        eventually(lambda: _cors(httpx.get(segment, headers={"Origin": "https://x.test"})).get(
            "access-control-allow-origin") is not None, "the dev rules to apply", timeout=30)
