"""The fault suite: its timing and its lines in the reliability summary, and the REST API
fixtures it shares (the S3 outage checks the API's answers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.summary import SuiteTimer, terminal_summary

TIMER = SuiteTimer("fault suite")


@pytest.fixture(scope="package", autouse=True)
def _timed() -> Iterator[None]:
    TIMER.start()
    yield
    TIMER.stop()


@pytest.fixture(scope="package", autouse=True)
def _api_from_the_start(request: pytest.FixtureRequest) -> None:
    """The REST API starts with the suite. Its port is picked when the cluster starts and
    nothing holds it until the API binds it: minutes of busy batches later an outgoing
    connection had taken it as its source port ("address already in use")."""
    request.getfixturevalue("api_url")


def pytest_collection_modifyitems(items: list[Any]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminal_summary(terminalreporter)
