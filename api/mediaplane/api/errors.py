"""The one table of the contract's error codes, and how errors reach it.

Routes raise `ApiError(code, ...)`; stores raise `core.errors` domain errors, which
`DOMAIN_CODES` maps to codes. The single handler in `errorhandlers` renders both, and every
framework error, in the envelope `{"error": {"code", "message", "requestId"}}`. The table
also feeds OpenAPI, so the docs list each route's possible errors with their codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediaplane.core import errors as domain


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    summary: str


def _codes(*codes: ErrorCode) -> dict[str, ErrorCode]:
    return {c.code: c for c in codes}


CODES: dict[str, ErrorCode] = _codes(
    # The contract's codes.
    ErrorCode("validation.mime.unsupported", 422, "The mime type is not accepted for the kind."),
    ErrorCode("validation.size.exceeds_limit", 422, "The declared size is above the tenant's "
              "limit for one upload."),
    ErrorCode("media.quarantined", 451, "The asset failed its safety checks and is never "
              "served (451 Unavailable For Legal Reasons, as the contract allows)."),
    ErrorCode("media.transcoding", 409, "The asset is not playable yet; retry later."),
    ErrorCode("rate.limited", 429, "Too many requests; see Retry-After."),
    ErrorCode("ai.refused.safety", 422, "The prompt or text was refused by moderation; "
              "`details` names the category (the text is never repeated)."),
    ErrorCode("ai.refused.budget", 429, "The tenant's AI budget for this kind of generation "
              "is used up until it renews; see Retry-After and `details.renewsAt`."),
    # Ours, in the same style: area.reason.
    ErrorCode("validation.invalid", 422, "The request does not match the schema."),
    ErrorCode("validation.malformed", 400, "The body is not valid JSON."),
    ErrorCode("validation.page_size", 422, "page[size] must be between 1 and 200."),
    ErrorCode("validation.cursor", 422, "The cursor is invalid, expired, or for other filters."),
    ErrorCode("validation.caption", 422, "The caption file is not valid WebVTT or SubRip."),
    ErrorCode("validation.variant", 404, "The asset has no such variant."),
    ErrorCode("request.too_large", 413, "The request body is larger than the API accepts."),
    ErrorCode("request.unsupported_media_type", 415, "The body must be application/json."),
    ErrorCode("auth.unauthenticated", 401, "A valid bearer token is required."),
    ErrorCode("auth.forbidden", 403, "The token's tenant is not a tenant here."),
    ErrorCode("stream.signature.invalid", 403, "The stream link's signature is missing, "
              "tampered with, or for another user or asset."),
    ErrorCode("stream.signature.expired", 403, "The stream link has expired."),
    ErrorCode("cors.forbidden", 403, "A cross-origin preflight from an origin, or for a "
              "method or header, that this API does not allow."),
    ErrorCode("media.not_found", 404, "No such asset for this tenant."),
    ErrorCode("media.conflict", 409, "The request conflicts with the asset's state."),
    ErrorCode("media.deleting", 409, "The asset is being deleted."),
    ErrorCode("transcript.not_found", 404, "The asset has no transcript in that language yet."),
    ErrorCode("caption.not_found", 404, "The asset has no generated caption track in that "
              "language."),
    ErrorCode("validation.language", 422, "The language is not a valid BCP 47 tag, or speech "
              "to text does not know it."),
    ErrorCode("media.no_audio", 422, "The asset has no audio stream to caption."),
    ErrorCode("media.failed", 409, "The asset's processing failed; it has nothing to serve."),
    ErrorCode("variant.not_failed", 409, "Only a failed variant can be retried (this one is "
              "pending, running or done)."),
    ErrorCode("upload.mismatch", 409, "The uploaded object differs from the declared one "
              "(size or ETag)."),
    ErrorCode("not_found", 404, "No such route."),
    ErrorCode("method_not_allowed", 405, "The route does not take this method."),
    ErrorCode("ai.unavailable", 503, "No image service is configured here (nothing was "
              "created or charged); an admin sets one in the AI catalogue."),
    ErrorCode("unavailable", 503, "A backing service (Kubernetes, S3, rate-limit storage) "
              "did not answer; retry."),
    ErrorCode("internal", 500, "An unexpected error; reported with its request id."),
)


# Domain errors that can reach a route unhandled, and what the client is told. Routes that
# mean something else by one of them (a missing asset is `media.not_found`) catch it first.
DOMAIN_CODES: dict[type[domain.DomainError], str] = {
    domain.NotFoundError: "not_found",
    domain.AlreadyExistsError: "media.conflict",
    domain.ConflictError: "media.conflict",
    domain.RejectedError: "validation.invalid",
    domain.CursorExpiredError: "validation.cursor",
    domain.CursorInvalidError: "validation.cursor",
    domain.UnavailableError: "unavailable",
}


def code_of(error: domain.DomainError) -> str:
    for kind in type(error).__mro__:
        code = DOMAIN_CODES.get(kind)
        if code is not None:
            return code
    return "internal"


class ApiError(Exception):
    """An error with a contract code; `headers` go on the response (Retry-After…)."""

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None,
                 details: Any = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details

    @property
    def status(self) -> int:
        return CODES[self.code].status


def not_found(asset_id: str) -> ApiError:
    return ApiError("media.not_found", f"asset {asset_id} not found")
