"""Fetching the source once, hashing it on the way, never storing more than was declared.

The declared size is a hard cap: an object larger than declared is reported as soon as the
cap is passed (or from Content-Length, before reading a byte), so a hostile upload cannot
fill the scratch volume.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from mediaplane.worker.errors import EXIT_INPUT, InfraError
from mediaplane.worker.upload import tls_context

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

ATTEMPTS = 4
CHUNK = 1024 * 1024
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@dataclass(frozen=True)
class Fetched:
    """`sha256` is None when the transfer stopped early because the size cannot match."""

    size: int
    sha256: str | None
    oversize: bool = False


class _RetryableError(Exception):
    pass


def _fetch_once(client: httpx.Client, url: str, dest: Path, expected_size: int) -> Fetched:
    with client.stream("GET", url) as response:
        if response.status_code >= 500 or response.status_code == 429:
            raise _RetryableError(f"GET answered {response.status_code}")
        if response.status_code != 200:
            raise InfraError("InputUnreachable", f"GET of the source answered "
                             f"{response.status_code}", exit_code=EXIT_INPUT)
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) != expected_size:
            return Fetched(size=int(length), sha256=None, oversize=int(length) > expected_size)
        digest = hashlib.sha256()
        size = 0
        with dest.open("wb") as out:
            for chunk in response.iter_raw(CHUNK):
                size += len(chunk)
                if size > expected_size:
                    return Fetched(size=size, sha256=None, oversize=True)
                digest.update(chunk)
                out.write(chunk)
        return Fetched(size=size, sha256=digest.hexdigest())


def fetch(url: str, dest: Path, expected_size: int) -> Fetched:
    """Download `url` to `dest`; retries transient failures from the start (the hash must
    cover one consistent transfer). Raises InfraError when the source stays unreachable."""
    last = ""
    # The uploads' TLS context (`upload.tls_context`): the CAs loaded once per pod, and only
    # for an https endpoint, keep that CPU off the cores the probe's rung encodes on.
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False,
                      verify=tls_context(url)) as client:
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(min(8.0, 0.5 * 2**attempt))
            try:
                return _fetch_once(client, url, dest, expected_size)
            except (_RetryableError, httpx.TransportError) as exc:
                last = str(exc) or type(exc).__name__
                log.warning("download attempt %d failed: %s", attempt + 1, last)
    raise InfraError("InputUnreachable", f"source download failed: {last}", exit_code=EXIT_INPUT)
