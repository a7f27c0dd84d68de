"""The one polling helper of the tests: wait until a probe answers, or fail saying what."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, *, timeout: float = 90.0,
               interval: float = 0.2, explain: Callable[[], object] | None = None) -> T:
    """Calls `probe` until it returns something truthy, and returns that.

    On timeout the AssertionError says what was awaited and, with `explain`, the state it
    ended in (an asset's status, a pod list), which is what a failing test needs to show.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"; last state: {explain()}" if explain is not None else ""
            raise AssertionError(f"no {what} within {timeout:.0f}s{detail}")
        time.sleep(interval)
