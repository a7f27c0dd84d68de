"""The operator sets the bucket's CORS rules at start-up when the install allows it, and
keeps running (saying what to do) when the storage refuses."""

from __future__ import annotations

import logging

import pytest

from mediaplane.core import bucketcors
from mediaplane.core.ladder import Ladder
from mediaplane.operator import bucket
from mediaplane.operator.context import Context
from mediaplane.operator.settings import OperatorSettings
from tests.support.memkube import MemoryKube, MemoryObjects


def context(objects: MemoryObjects, **settings: object) -> Context:
    return Context(kube=MemoryKube(), storage=objects,
                   settings=OperatorSettings.model_validate(settings), ladder=Ladder())


async def test_rules_are_set_from_the_settings() -> None:
    objects = MemoryObjects()
    ctx = context(objects, bucket_cors=True, bucket_cors_upload_origins="https://a.test, "
                  "https://b.test/")
    assert await bucket.apply_cors(ctx)
    assert objects.cors == bucketcors.rules(["*"], ["https://a.test", "https://b.test"])
    assert objects.cors is not None
    assert objects.cors[0]["AllowedMethods"] == ["GET", "HEAD"]
    assert objects.cors[0]["AllowedHeaders"] == ["Range"]
    assert objects.cors[0]["ExposeHeaders"] == ["Content-Length", "Content-Range", "ETag"]
    assert objects.cors[1]["AllowedMethods"] == ["POST"]


async def test_nothing_is_set_unless_asked() -> None:
    objects = MemoryObjects()
    assert not await bucket.apply_cors(context(objects))
    assert objects.calls["configure_cors"] == 0


async def test_a_refusal_is_reported_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    objects = MemoryObjects()
    objects.cors_refused = True
    with caplog.at_level(logging.WARNING):
        assert not await bucket.apply_cors(context(objects, bucket_cors=True))
    assert "s3:PutBucketCORS" in caplog.text
    assert objects.cors is None
