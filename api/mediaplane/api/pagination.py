"""Opaque cursors: where the next page starts, bound to the filters they were made for.

Lists page by asset name (keyset paging over the watch-fed cache): the cursor wraps the
last name of a page together with the filters, so a cursor replayed with other filters is
refused rather than silently wrong.
"""

from __future__ import annotations

import base64
import hashlib
import json

from mediaplane.api.errors import ApiError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def _fingerprint(filters: str) -> str:
    return hashlib.sha256(filters.encode()).hexdigest()[:16]


def encode_cursor(continue_token: str, filters: str) -> str:
    raw = json.dumps({"c": continue_token, "f": _fingerprint(filters)},
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, filters: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        token, fingerprint = data["c"], data["f"]
    except (ValueError, KeyError, TypeError):
        raise ApiError("validation.cursor", "the cursor is not one this API made") from None
    if not isinstance(token, str) or fingerprint != _fingerprint(filters):
        raise ApiError("validation.cursor", "the cursor was made for other filters")
    return token


def check_page_size(size: int) -> int:
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError("validation.page_size",
                       f"page[size] must be between 1 and {MAX_PAGE_SIZE}, got {size}")
    return size
