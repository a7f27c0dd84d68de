"""What the operator and the API need of object storage, as an interface.

`storage.Storage` implements it on S3 (boto3); the fast tests implement it in memory.
Presigning is pure computation; the other methods do I/O and are called from a thread
when on an event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from mediaplane.core.tasks import PresignedPost


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str
    content_type: str | None
    last_modified: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # user metadata, keys lower case


@dataclass(frozen=True)
class FormUpload:
    """A browser-style POST: send `fields`, then the file, as multipart/form-data to `url`."""

    url: str
    fields: dict[str, str]


class ObjectStore(Protocol):
    bucket: str

    def presign_get(self, key: str, expires_seconds: int) -> str: ...

    def presign_post_prefix(self, prefix: str, expires_seconds: int,
                            max_bytes: int) -> PresignedPost: ...

    def presign_post_exact(self, key: str, size_bytes: int, content_type: str,
                           expires_seconds: int,
                           metadata: Mapping[str, str] | None = None) -> FormUpload:
        """A form for exactly this key, size, type and user metadata (pinned by policy)."""
        ...

    def presign_post_object(self, key: str, content_type: str, max_bytes: int,
                            expires_seconds: int) -> PresignedPost: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def get_text(self, key: str) -> str: ...

    def put_text(self, key: str, text: str, content_type: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def configure_cors(self, rules: list[dict[str, Any]]) -> None:
        """Replaces the bucket's CORS rules (`core.bucketcors.rules`)."""
        ...

    def list_folders(self, prefix: str) -> list[str]:
        """The immediate sub-folders of `prefix` (keys up to the next '/')."""
        ...

    def ping(self) -> None:
        """Raises `core.errors.UnavailableError` unless the bucket answers."""
        ...
