"""The hostile-media suite shares the REST API fixtures; its time and its refusals go into
the reliability summary."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import (  # noqa: F401 (the API fixtures, shared)
    api_url,
    jwt_secret,
    make_tenant,
    make_user,
    stream_key,
    web_origin,
)
from tests.support.summary import SuiteTimer, terminal_summary

TIMER = SuiteTimer("hostile-media suite")


@pytest.fixture(scope="package", autouse=True)
def _timed() -> Iterator[None]:
    TIMER.start()
    yield
    TIMER.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminal_summary(terminalreporter)
