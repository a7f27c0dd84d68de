"""The upload form signed by `PostPolicySigner` says what boto3's own presigned POST says,
and its signature is the SigV4 one for its policy. (SeaweedFS accepting it, and refusing
anything else, is tested in tests/api/test_uploads.py.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import botocore.auth
import pytest

from mediaplane.core import storage as storage_module
from mediaplane.core.settings import S3Settings
from mediaplane.core.storage import Storage

SECRET = "secret-key-0123456789"


def policy_of(fields: dict[str, str]) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(base64.b64decode(fields["policy"]))
    return decoded


def sigv4(policy_b64: str, date: str, region: str) -> str:
    key = f"AWS4{SECRET}".encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()


def test_fast_form_matches_boto3_and_is_signed() -> None:
    storage = Storage(S3Settings(endpoint="http://127.0.0.1:9", bucket="media",
                                 region="eu-west-1"), ("AKIDEXAMPLE", SECRET))
    key = "tenants/acme/assets/mda_0123456789abcdefghjkmnpqrs/source"
    form = storage.presign_post_exact(key, 1234, "video/mp4", 900, {"mediaplane-kind": "video"})
    reference = storage.client.generate_presigned_post(
        Bucket="media", Key=key,
        Fields={"Content-Type": "video/mp4", "x-amz-meta-mediaplane-kind": "video"},
        Conditions=[{"Content-Type": "video/mp4"}, {"x-amz-meta-mediaplane-kind": "video"},
                    ["content-length-range", 1234, 1234]], ExpiresIn=900)
    assert form.url == reference["url"] == "http://127.0.0.1:9/media"
    assert set(form.fields) == set(reference["fields"])
    mine, theirs = policy_of(form.fields), policy_of(reference["fields"])
    unstamped = ("x-amz-date", "x-amz-credential")

    def stable(policy: dict[str, object]) -> list[object]:
        conditions = policy["conditions"]
        assert isinstance(conditions, list)
        return [c for c in conditions if not (isinstance(c, dict) and set(c) & set(unstamped))]

    assert stable(mine) == stable(theirs)
    date = form.fields["x-amz-date"][:8]
    assert form.fields["x-amz-credential"] == f"AKIDEXAMPLE/{date}/eu-west-1/s3/aws4_request"
    assert form.fields["x-amz-signature"] == sigv4(form.fields["policy"], date, "eu-west-1")


def test_fast_presigned_get_is_boto3s_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same URL, signature included, as boto3's own presigner (path style)."""
    frozen = datetime(2026, 12, 2, 10, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: frozen)
    storage = Storage(S3Settings(endpoint="http://127.0.0.1:9", bucket="media",
                                 region="eu-west-1"), ("AKIDEXAMPLE", SECRET))
    key = "tenants/acme/assets/mda_0123456789abcdefghjkmnpqrs/variants/240p/seg 1+é.m4s"
    fast = urlsplit(storage.presign_get(key, 900))
    slow = urlsplit(storage.client.generate_presigned_url(
        "get_object", Params={"Bucket": "media", "Key": key}, ExpiresIn=900))
    assert (fast.scheme, fast.netloc, fast.path) == (slow.scheme, slow.netloc, slow.path)
    mine, theirs = parse_qs(fast.query), parse_qs(slow.query)
    assert set(mine) == set(theirs)
    assert mine == theirs
    assert mine["X-Amz-Date"] == ["20261202T100000Z"]
    assert storage.presign_get(key, 900) == fast.geturl(), "reused while fresh"


def test_a_presigned_get_is_reused_within_its_minute_only(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A URL handed out is never older than the minute it was signed in, so the API may
    keep answers with such URLs for that same minute (`mediaplane.api.presented`)."""
    clock = {"now": datetime(2026, 12, 2, 10, 0, 58)}
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: clock["now"])
    monkeypatch.setattr(storage_module, "time",
                        SimpleNamespace(time=lambda: clock["now"].timestamp()))
    storage = Storage(S3Settings(endpoint="http://127.0.0.1:9", bucket="media",
                                 region="eu-west-1"), ("AKIDEXAMPLE", SECRET))
    key = "tenants/acme/assets/mda_0123456789abcdefghjkmnpqrs/poster.jpg"
    first = storage.presign_get(key, 900)
    clock["now"] = datetime(2026, 12, 2, 10, 0, 59)
    assert storage.presign_get(key, 900) == first
    clock["now"] = datetime(2026, 12, 2, 10, 1, 0)
    again = parse_qs(urlsplit(storage.presign_get(key, 900)).query)
    assert again["X-Amz-Date"] == ["20261202T100100Z"], "signed anew in the next minute"
