"""Assets as one caller sees them, kept as JSON for the minute their links were issued in.

Dashboards poll the same list page every few seconds. Presenting a page of 200 assets
(about 1,400 stream tokens, presigned posters, the response models and their JSON) took
about 16 ms of the API's one thread, so ten clients polling at once queued behind each
other (docs/performance.md, "Many assets"). What a caller sees of an asset changes only
with the asset itself (its resourceVersion) and with the minute its links are issued in:
stream tokens share an expiry per minute (`signing.ISSUE_GRANULARITY`) and presigned GETs
are reused within the minute they were signed in (`storage.GetSigner`). So an asset's JSON
is kept per caller, asset version and minute: no link in it is more than a minute old, as
with the presigned GETs reused before it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from cachetools import LRUCache
from fastapi import Response

from mediaplane.api import models
from mediaplane.api.auth import Principal
from mediaplane.api.signing import ISSUE_GRANULARITY
from mediaplane.core.resources import MediaAsset

# About 7 KB each for a finished video with five renditions: 14 MB at most, ten pages of 200.
MAX_ENTRIES = 2_000

Present = Callable[[MediaAsset], models.MediaAsset]
_Key = tuple[str, str, str, str, int]


class Tally:
    """Assets written from kept JSON and made anew, in every cache of the process (exported
    by `metrics`). Plain integers, 0.06 µs an increment here: a Prometheus counter takes a
    lock each time, 0.23 µs, 3% of a polled page of 200 (1.6 ms)."""

    kept = 0
    made = 0


class PresentedAssets:
    def __init__(self, maxsize: int = MAX_ENTRIES) -> None:
        self._entries: LRUCache[_Key, bytes] = LRUCache(maxsize=maxsize)

    def json(self, principal: Principal, asset: MediaAsset, present: Present,
             now: float | None = None) -> bytes:
        """`present(asset)` as JSON, made once per caller, asset version and minute."""
        uid, version = asset.metadata.uid, asset.metadata.resource_version
        if not uid or not version:  # not read from the API server: nothing to key it by
            return _dump(present(asset))
        minute = int(now if now is not None else time.time()) // ISSUE_GRANULARITY
        key = (principal.tenant, principal.user, uid, version, minute)
        body = self._entries.get(key)
        if body is None:
            Tally.made += 1
            body = self._entries[key] = _dump(present(asset))
        else:
            Tally.kept += 1
        return body


def _dump(asset: models.MediaAsset) -> bytes:
    return asset.model_dump_json(by_alias=True).encode()


def one(asset: bytes) -> Response:
    """`models.Envelope` of one presented asset, as its model would write it."""
    return Response(b'{"data":' + asset + b"}", media_type="application/json")


def page(assets: Sequence[bytes], next_cursor: str | None) -> Response:
    """`models.ListEnvelope` of presented assets, as its model would write it."""
    cursor = json.dumps(next_cursor).encode()  # the cursor is base64url; null when last
    return Response(b'{"data":[' + b",".join(assets) + b'],"nextCursor":' + cursor + b"}",
                    media_type="application/json")
