"""The reliability suites' summary: what each test injected or sent and what came of it,
printed as one table at the end of the session (pytest's terminal summary).

Tests record outcomes as they assert them (`LEDGER.fault(...)`, `LEDGER.hostile(...)`,
`LEDGER.attack(...)`); the conftests of tests/faults, tests/hostile and tests/attacks call
`terminal_summary` from their `pytest_terminal_summary` hook, which prints once.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Ledger:
    faults: list[str] = field(default_factory=list)  # one line per injected fault
    in_flight: int = 0  # assets in flight while faults were injected (summed over batches)
    lost: int = 0
    duplicated: int = 0
    hostile: dict[str, bool] = field(default_factory=dict)  # file -> refused
    attacks: dict[str, bool] = field(default_factory=dict)  # attack -> refused
    seconds: dict[str, float] = field(default_factory=dict)  # suite -> wall time
    printed: bool = False

    def fault(self, what: str) -> None:
        self.faults.append(what)

    def batch(self, assets: int, lost: int, duplicated: int) -> None:
        self.in_flight += assets
        self.lost += lost
        self.duplicated += duplicated

    def hostile_file(self, name: str, refused: bool) -> None:
        self.hostile[name] = refused

    def attack(self, name: str, refused: bool) -> None:
        self.attacks[name] = refused

    def rows(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        if self.faults or self.in_flight:
            rows += [("faults injected", str(len(self.faults))),
                     ("assets in flight", str(self.in_flight)),
                     ("lost", str(self.lost)), ("duplicated", str(self.duplicated))]
        if self.hostile:
            refused = sum(self.hostile.values())
            rows.append(("hostile files refused", f"{refused}/{len(self.hostile)}"))
        if self.attacks:
            refused = sum(self.attacks.values())
            rows.append(("attacks refused", f"{refused}/{len(self.attacks)}"))
        rows += [(f"time of {suite}", f"{seconds:.0f} s")
                 for suite, seconds in sorted(self.seconds.items())]
        return rows


LEDGER = Ledger()


class SuiteTimer:
    """Wall time of a suite: from its first test's start to its last test's end."""

    def __init__(self, suite: str) -> None:
        self.suite = suite
        self.started: float | None = None

    def start(self) -> None:
        if self.started is None:
            self.started = time.monotonic()

    def stop(self) -> None:
        if self.started is not None:
            LEDGER.seconds[self.suite] = time.monotonic() - self.started


def terminal_summary(terminalreporter: Any) -> None:
    if LEDGER.printed:
        return
    rows = LEDGER.rows()
    if not rows:
        return
    LEDGER.printed = True
    terminalreporter.section("reliability summary")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        terminalreporter.write_line(f"{name:<{width}}  {value}")
    unrefused = [n for n, ok in [*LEDGER.hostile.items(), *LEDGER.attacks.items()] if not ok]
    for name in unrefused:
        terminalreporter.write_line(f"NOT refused: {name}")
    for fault, times in Counter(LEDGER.faults).items():
        terminalreporter.write_line(f"  fault: {fault}" + (f" (x{times})" if times > 1 else ""))
