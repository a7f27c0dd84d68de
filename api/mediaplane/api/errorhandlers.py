"""The one place errors become responses: every error, ours or the framework's, leaves in
the contract's envelope with a request id. Nothing a client sends produces a 500."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediaplane.api.errors import CODES, ApiError, code_of
from mediaplane.api.metrics import ERRORS
from mediaplane.core import logs
from mediaplane.core.errors import DomainError

log = logging.getLogger("mediaplane.api")
# Request ids need to be unique, not secret: a random prefix per process and a counter
# (a urandom call per request showed in the profile of the hot path).
_REQUEST_ID_PREFIX = secrets.token_hex(4)
_request_ids = (f"{_REQUEST_ID_PREFIX}{n:08x}" for n in itertools.count())
REQUEST_ID_HEADER = "X-Request-ID"
# What a 503 tells the client: a backing service is away, try again this much later.
RETRY_AFTER_SECONDS = "2"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request.too_large",
               415: "request.unsupported_media_type", 401: "auth.unauthenticated",
               403: "auth.forbidden", 400: "validation.malformed", 422: "validation.invalid"}


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id") or "")


def envelope(request: Request, code: str, status: int, message: str,
             headers: dict[str, str] | None = None, details: Any = None) -> JSONResponse:
    ERRORS.labels(code).inc()
    body: dict[str, Any] = {"code": code, "message": message, "requestId": request_id(request)}
    if details is not None:
        body["details"] = jsonable_encoder(details)
    return JSONResponse({"error": body}, status_code=status,
                        headers={**(headers or {}), REQUEST_ID_HEADER: request_id(request)})


async def on_api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    headers = error.headers
    if error.status >= 500:
        log.warning("%s %s: %s (%s)", request.method, request.url.path, error.code,
                    error.message)
    if error.status == 503:
        headers = {"Retry-After": RETRY_AFTER_SECONDS, **headers}
    return envelope(request, error.code, error.status, error.message, headers,
                    error.details)


async def on_domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    code = code_of(error)
    status = CODES[code].status
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    if status >= 500:
        log.warning("%s %s: %s (%s)", request.method, request.url.path, code, error)
    return envelope(request, code, status, str(error) or CODES[code].summary, headers)


async def on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return envelope(request, "validation.malformed", 400, "the body is not valid JSON")
    details = [{"location": ".".join(str(part) for part in p.get("loc", ())),
                "message": p.get("msg", ""), "type": p.get("type", "")} for p in problems]
    summary = "; ".join(f"{d['location']}: {d['message']}" for d in details[:5])
    return envelope(request, "validation.invalid", 422, summary or "invalid request",
                    details=details)


async def on_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if isinstance(error.__cause__, ApiError):  # raised while FastAPI read the body
        return await on_api_error(request, error.__cause__)
    if isinstance(error.__cause__, DomainError):
        return await on_domain_error(request, error.__cause__)
    code = _HTTP_CODES.get(error.status_code, "validation.invalid" if error.status_code < 500
                           else "internal")
    message = str(error.detail) if error.detail else code
    return envelope(request, code, error.status_code, message,
                    dict(error.headers) if error.headers else None)


async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s (request %s)", request.method, request.url.path,
                  request_id(request), exc_info=error)
    return envelope(request, "internal", 500, "unexpected error; quote the request id")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


class RequestGuard:
    """Gives every request an id, refuses oversize bodies before they are read, and
    bounds the time to an answer.

    A declared Content-Length over the limit is refused at once; a chunked body is
    counted as it streams and cut off with the same 413 envelope. A request with no answer
    after `deadline_seconds` (a backing service stalled past every client timeout) is cut
    off with 503 `unavailable` and Retry-After: the client hears something bounded, and
    retries are safe because every write is idempotent (deterministic names).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int,
                 deadline_seconds: float | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.deadline_seconds = deadline_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or [])
        offered = incoming.get(b"x-request-id", b"").decode("latin-1")
        rid = offered if _SANE_REQUEST_ID.match(offered) else next(_request_ids)
        scope.setdefault("state", {})["request_id"] = rid
        path = scope.get("path", "")
        with logs.bound(request_id=rid, asset_id=logs.asset_id_in(path)):
            await self._guarded(scope, receive, send, incoming, rid, path)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send,
                       incoming: dict[bytes, bytes], rid: str, path: str) -> None:
        started = time.perf_counter()
        status = 500
        length = incoming.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            response = envelope(Request(scope), "request.too_large", 413,
                                f"the body is larger than {self.max_body_bytes} bytes")
            await response(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise ApiError("request.too_large",
                                   f"the body is larger than {self.max_body_bytes} bytes")
            return message

        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                headers = list(message.get("headers") or [])
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._answer(scope, receive, counting_receive, send_with_id,
                               lambda: responded)
        finally:
            # The access log, one JSON line per request (at info: off at the dev cluster's
            # and the bench's warning level); the request id and asset id come bound.
            if log.isEnabledFor(logging.INFO):
                log.info("request", extra={
                    "method": scope.get("method"), "path": path, "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2)})

    async def _answer(self, scope: Scope, receive: Receive, counting_receive: Receive,
                      send: Send, responded: Callable[[], bool]) -> None:
        """The app's answer, or 503 once the deadline passes with nothing sent yet."""
        if self.deadline_seconds is None:
            await self.app(scope, counting_receive, send)
            return
        deadline = asyncio.timeout(self.deadline_seconds)
        try:
            async with deadline:
                await self.app(scope, counting_receive, send)
        except TimeoutError:
            if not deadline.expired() or responded():
                raise
            log.warning("%s %s: no answer within %.1f s", scope.get("method"),
                        scope.get("path"), self.deadline_seconds)
            response = envelope(Request(scope), "unavailable", 503,
                                f"no answer within {self.deadline_seconds:g} s: a backing "
                                "service is slow or down; retry",
                                {"Retry-After": RETRY_AFTER_SECONDS})
            await response(scope, receive, send)
