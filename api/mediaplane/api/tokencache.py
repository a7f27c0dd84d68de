"""Tokens already verified, remembered until they expire.

A player fetches every playlist of a session with the same stream link, and a client sends
the same bearer on every call: checking the signature once per token, not once per
request, takes the HMAC (or RSA) work and the JSON parsing out of the hot path. A token is
only ever remembered after it verified, never beyond its own expiry, and the table is
bounded (least recently used goes first).
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

from cachetools import LRUCache

T = TypeVar("T")


class VerifiedTokens(Generic[T]):
    def __init__(self, maxsize: int = 20_000) -> None:
        self._entries: LRUCache[str, tuple[T, float]] = LRUCache(maxsize=maxsize)

    def get(self, token: str, now: float | None = None) -> T | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        value, expires_at = entry
        if (now if now is not None else time.time()) >= expires_at:
            self._entries.pop(token, None)
            return None
        return value

    def put(self, token: str, value: T, expires_at: float) -> None:
        self._entries[token] = (value, expires_at)
