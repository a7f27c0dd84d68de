"""The API fixtures live in `tests.support.apienv` (a plugin the root conftest loads, shared
with the other folders that talk to the API); the name is kept for the tests' imports."""

from tests.support.apienv import UserFactory

__all__ = ["UserFactory"]
