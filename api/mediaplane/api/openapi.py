"""OpenAPI documentation of the error envelope for each route's possible codes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from mediaplane.api.errors import CODES
from mediaplane.api.models import ErrorEnvelope

COMMON = ("validation.invalid", "validation.malformed", "request.too_large", "unavailable",
          "internal")
AUTHENTICATED = ("auth.unauthenticated", "auth.forbidden")


def errors(*codes: str, authenticated: bool = True) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: one entry per status listing its codes."""
    selected = [*codes, *COMMON, *(AUTHENTICATED if authenticated else ())]
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in selected:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        by_status[CODES[code].status].append(code)
    return {status: {"model": ErrorEnvelope,
                     "description": "; ".join(f"`{c}`: {CODES[c].summary}" for c in group)}
            for status, group in sorted(by_status.items())}
