"""Failures of the stores behind mediaplane (the Kubernetes API, object storage), in terms a
caller can act on. Each front end maps them to its own answer: the REST API's one error
table turns them into the contract's codes, the CLI into messages and exit codes.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors below; `str(error)` is safe to show to the caller."""


class NotFoundError(DomainError):
    """The object does not exist (or is not the caller's to see)."""


class AlreadyExistsError(DomainError):
    """The name is taken: how deterministic names make creation idempotent."""


class ConflictError(DomainError):
    """The object changed since it was read; read it again and retry."""


class RejectedError(DomainError):
    """The store refused the write as invalid (schema, CEL rule, admission policy)."""


class CursorExpiredError(DomainError):
    """A list cursor's snapshot is gone; list again from the first page."""


class CursorInvalidError(DomainError):
    """A list cursor the store does not accept."""


class UnavailableError(DomainError):
    """A backing service did not answer (in time); retrying later may work."""
