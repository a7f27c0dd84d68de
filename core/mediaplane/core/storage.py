"""S3 access, the production `objects.ObjectStore`: presigning (pure computation, no
network) and the few calls that do I/O.

boto3 is synchronous; callers on an event loop run the I/O methods in a thread
(`asyncio.to_thread`). Presigning needs no network, so it is safe on the loop.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import boto3
import boto3.session
from botocore.auth import S3SigV4PostAuth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.client import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from cachetools import LRUCache

from mediaplane.core.errors import UnavailableError
from mediaplane.core.objects import FormUpload, ObjectInfo
from mediaplane.core.settings import S3Settings
from mediaplane.core.tasks import PresignedPost

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


# Answers of a store that is there but cannot serve right now (S3's own codes, and the
# statuses any S3-compatible server uses for it).
_BUSY_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout",
                         "503", "500", "502", "504"})


@contextlib.contextmanager
def unavailable_as_domain_error() -> Iterator[None]:
    """A storage server that refuses connections, stalls past the timeouts, drops the
    connection or says it is busy becomes `UnavailableError`: callers retry it later (the
    API answers 503 `unavailable`), and never mistake it for an answer about an object."""
    try:
        yield
    except (BotoConnectionError, HTTPClientError) as error:
        raise UnavailableError(f"object storage: {error}") from error
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _BUSY_CODES or status >= 500:
            raise UnavailableError(f"object storage: {code or status}") from error
        raise


class PostPolicySigner:
    """What boto3's `generate_presigned_post` does, minus what it repeats on every call.

    The upload-url route signs a POST policy per request; boto3 resolves the bucket's
    endpoint, emits its events and validates parameters each time, which the profile showed
    as the largest part of the route. The URL is resolved once here, and the policy is
    signed by botocore's own SigV4 POST signer with the session's current credentials (so
    rotating credentials, from a web identity for instance, still work).
    """

    def __init__(self, client: S3Client, session: boto3.session.Session, bucket: str,
                 region: str) -> None:
        self.url = str(client.generate_presigned_post(Bucket=bucket, Key="k")["url"])
        self._session = session
        self._bucket = bucket
        self._region = region

    def sign(self, key: str, fields: Mapping[str, str], conditions: Sequence[object],
             expires_seconds: int) -> FormUpload:
        credentials = self._session.get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials found to sign uploads with")
        expiration = datetime.now(UTC) + timedelta(seconds=expires_seconds)
        form = {**fields, "key": key}
        policy = {"expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "conditions": [*conditions, {"bucket": self._bucket}, {"key": key}]}
        request = AWSRequest(method="POST", url=self.url)
        request.context["s3-presign-post-fields"] = form
        request.context["s3-presign-post-policy"] = policy
        S3SigV4PostAuth(credentials.get_frozen_credentials(), "s3", self._region).add_auth(
            request)
        return FormUpload(url=self.url, fields={str(k): str(v) for k, v in form.items()})


class GetSigner:
    """Presigned GETs without boto3's per-call endpoint resolution, remembered briefly.

    A list page of 200 assets presigns a poster per asset, a playlist presigns every
    segment: through `generate_presigned_url` each cost several hundred microseconds. The
    URL is built here from the endpoint (path-style, as the client is configured) and signed
    by botocore's own SigV4 query signer; a URL is reused within the clock's minute it was
    signed in (`REUSE_SECONDS`), so it always has at least `expires_seconds - REUSE_SECONDS`
    left when handed out. The API keeps presented assets for that same minute
    (`mediaplane.api.presented`), which adds no age to the URLs in them.
    """

    REUSE_SECONDS = 60

    def __init__(self, endpoint: str, session: boto3.session.Session, bucket: str,
                 region: str) -> None:
        self._base = f"{endpoint.rstrip('/')}/{quote(bucket, safe='')}/"
        self._session = session
        self._region = region
        self._recent: LRUCache[tuple[str, int], tuple[str, int]] = LRUCache(maxsize=50_000)

    def sign(self, key: str, expires_seconds: int) -> str:
        now = int(time.time()) // self.REUSE_SECONDS
        recent = self._recent.get((key, expires_seconds))
        if recent is not None and recent[1] == now:
            return recent[0]
        credentials = self._session.get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials found to sign URLs with")
        request = AWSRequest(method="GET", url=self._base + quote(key, safe="/~"))
        S3SigV4QueryAuth(credentials.get_frozen_credentials(), "s3", self._region,
                         expires=expires_seconds).add_auth(request)
        url = str(request.url)
        self._recent[(key, expires_seconds)] = (url, now)
        return url


class Storage:
    """`ObjectStore` on S3 or any S3-compatible server."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Storage:
        """A client for the dev cluster's S3 from `mediaplane dev env`'s variables."""
        settings = S3Settings(endpoint=env["MEDIAPLANE_S3_ENDPOINT"],
                              bucket=env["MEDIAPLANE_S3_BUCKET"],
                              region=env["MEDIAPLANE_S3_REGION"])
        return cls(settings, (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]))

    def __init__(self, settings: S3Settings, credentials: tuple[str, str] | None = None) -> None:
        """`credentials` (access key, secret) override boto3's chain; tools use it, services
        leave it None so cloud identity works."""
        self.settings = settings
        self.bucket = settings.bucket
        access_key, secret_key = credentials or (None, None)
        self._session = boto3.session.Session(aws_access_key_id=access_key,
                                              aws_secret_access_key=secret_key,
                                              region_name=settings.region)

    def _client(self, endpoint: str | None) -> S3Client:
        settings = self.settings
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if settings.path_style else "auto"},
            retries={"max_attempts": settings.max_attempts, "mode": "standard"},
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            max_pool_connections=32,
        )
        return self._session.client("s3", endpoint_url=endpoint, config=config)

    @cached_property
    def client(self) -> S3Client:
        return self._client(self.settings.endpoint)

    @cached_property
    def _presigner(self) -> S3Client:
        """Signs for the endpoint the URL's user reaches, which may differ from ours."""
        if self.settings.public_endpoint in (None, self.settings.endpoint):
            return self.client
        return self._client(self.settings.public_endpoint)

    def presign_get(self, key: str, expires_seconds: int) -> str:
        if not self.settings.path_style:  # virtual-hosted URLs: boto3 knows the rules
            return self._presigner.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=expires_seconds)
        return self._get_signer.sign(key, expires_seconds)

    @cached_property
    def _get_signer(self) -> GetSigner:
        """Path-style URLs on the public endpoint; AWS S3 itself when there is none."""
        endpoint = (self.settings.public_endpoint or self.settings.endpoint
                    or f"https://s3.{self.settings.region}.amazonaws.com")
        return GetSigner(endpoint, self._session, self.bucket, self.settings.region)

    def presign_post_prefix(self, prefix: str, expires_seconds: int,
                            max_bytes: int) -> PresignedPost:
        """A POST policy that accepts any key under `prefix` and nothing else."""
        post = self._presigner.generate_presigned_post(
            Bucket=self.bucket,
            Key=prefix + "${filename}",
            Fields={},
            # boto3 turns a Key ending in ${filename} into ["starts-with", "$key", prefix].
            Conditions=[["starts-with", "$Content-Type", ""],
                        ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_seconds,
        )
        fields = {k: v for k, v in post["fields"].items() if k != "key"}
        return PresignedPost(url=post["url"], fields=fields, key_prefix=prefix)

    def presign_post_exact(self, key: str, size_bytes: int, content_type: str,
                           expires_seconds: int,
                           metadata: Mapping[str, str] | None = None) -> FormUpload:
        """A browser-style POST policy for one object: this key, exactly this many bytes,
        this Content-Type and this user metadata. The storage itself refuses anything else."""
        fields = {"Content-Type": content_type,
                  **{f"x-amz-meta-{k}": v for k, v in (metadata or {}).items()}}
        conditions: list[object] = [*({name: value} for name, value in fields.items()),
                                    ["content-length-range", size_bytes, size_bytes]]
        return self._post_signer.sign(key, fields, conditions, expires_seconds)

    @cached_property
    def _post_signer(self) -> PostPolicySigner:
        return PostPolicySigner(self._presigner, self._session, self.bucket,
                                self.settings.region)

    def presign_post_object(self, key: str, content_type: str, max_bytes: int,
                            expires_seconds: int) -> PresignedPost:
        """A POST policy for one object of unknown size (up to `max_bytes`): this key and
        this Content-Type only. A generation Job stores an AI asset's source with it; its
        `key_prefix` is the whole key."""
        post = self._presigner.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type},
                        ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_seconds,
        )
        fields = {str(k): str(v) for k, v in post["fields"].items() if k != "key"}
        return PresignedPost(url=post["url"], fields=fields, key_prefix=key)

    # I/O below: call from a thread when on an event loop.

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with unavailable_as_domain_error():
                head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(size=head["ContentLength"], etag=head["ETag"].strip('"'),
                          content_type=head.get("ContentType"),
                          last_modified=head.get("LastModified"),
                          metadata={k.lower(): v for k, v in head.get("Metadata", {}).items()})

    def get_text(self, key: str) -> str:
        with unavailable_as_domain_error():
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()

    def put_text(self, key: str, text: str, content_type: str) -> None:
        with unavailable_as_domain_error():
            self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode(),
                                   ContentType=content_type, CacheControl="no-cache")

    def ping(self) -> None:
        """Raises UnavailableError unless the bucket answers (readiness)."""
        with unavailable_as_domain_error():
            self.client.head_bucket(Bucket=self.bucket)

    def configure_cors(self, rules: list[dict[str, Any]]) -> None:
        """Replaces the bucket's CORS rules (`core.bucketcors`); needs s3:PutBucketCORS."""
        with unavailable_as_domain_error():
            self.client.put_bucket_cors(Bucket=self.bucket,
                                        CORSConfiguration={"CORSRules": cast("Any", rules)})

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with unavailable_as_domain_error():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def list_folders(self, prefix: str) -> list[str]:
        folders: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with unavailable_as_domain_error():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        return folders

    def delete_prefix(self, prefix: str) -> int:
        """Deletes every object under `prefix`; returns how many. Idempotent."""
        if not prefix.endswith("/") or prefix.count("/") < 4:
            raise ValueError(f"refusing to delete a prefix this broad: {prefix!r}")
        keys = self.list_keys(prefix)
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            with unavailable_as_domain_error():
                self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        return len(keys)
