"""Kubernetes-style conditions: lastTransitionTime moves only when status flips."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: Sequence[Mapping[str, Any]], type_: str, status: Status,
                  reason: str, message: str, generation: int | None,
                  now: str) -> list[dict[str, Any]]:
    """Returns a new list with `type_` set; other conditions are kept as they are."""
    result: list[dict[str, Any]] = []
    found = False
    for condition in conditions:
        if condition.get("type") != type_:
            result.append(dict(condition))
            continue
        found = True
        flipped = condition.get("status") != status
        result.append(_condition(type_, status, reason, message, generation,
                                 now if flipped else condition.get("lastTransitionTime", now)))
    if not found:
        result.append(_condition(type_, status, reason, message, generation, now))
    return result


def _condition(type_: str, status: Status, reason: str, message: str, generation: int | None,
               transition: str) -> dict[str, Any]:
    condition: dict[str, Any] = {"type": type_, "status": status, "reason": reason,
                                 "message": message, "lastTransitionTime": transition}
    if generation is not None:
        condition["observedGeneration"] = generation
    return condition


def get_condition(conditions: Sequence[Mapping[str, Any]] | None,
                  type_: str) -> Mapping[str, Any] | None:
    for condition in conditions or ():
        if condition.get("type") == type_:
            return condition
    return None


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    condition = get_condition(conditions, type_)
    return condition is not None and condition.get("status") == "True"
