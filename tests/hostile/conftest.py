"""The hostile-media suite shares the REST API fixtures; its time and its refusals go into
the reliability summary."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.summary import SuiteTimer, terminal_summary

TIMER = SuiteTimer("hostile-media suite")


@pytest.fixture(scope="package", autouse=True)
def _timed() -> Iterator[None]:
    TIMER.start()
    yield
    TIMER.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminal_summary(terminalreporter)
