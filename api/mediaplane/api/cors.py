"""Cross-origin access: two policies, chosen by path, on Starlette's CORS middleware.

- Stream routes and the player page are signed links that carry their own grant and no
  cookie, so any origin may read them (`Access-Control-Allow-Origin: *`, no credentials):
  a web app anywhere plays what it was given a link to.
- The JSON API answers only the origins an install allows (`MEDIAPLANE_API_CORS_ALLOWED_ORIGINS`,
  the chart's `api.cors.allowedOrigins`), with `Authorization` and `Content-Type` allowed.
  Bearer tokens are headers, not cookies, so no policy allows credentials.

Both expose the request id and the rate-limit headers to scripts. A preflight that passes
answers 204 (Starlette answers 200 with a body); one that fails answers 403 in the
contract's error envelope, before any route is looked up (so never 405).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mediaplane.api.errors import CODES

EXPOSED_HEADERS = ("X-Request-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                   "X-RateLimit-Reset", "Retry-After")
PUBLIC_METHODS = ("GET", "HEAD")
# Range: players ask for byte ranges; Authorization: a stream route checks a bearer that
# is sent (it must be the link's user), so a page may send one.
PUBLIC_HEADERS = ("Range", "Authorization")
API_METHODS = ("GET", "HEAD", "POST", "DELETE")
API_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
PUBLIC_MAX_AGE = 86400
API_MAX_AGE = 600

# Signed, cookie-free routes: a stream link's manifests and files, and the player page.
PUBLIC_PATHS = re.compile(r"^/api/v1/media/[^/]+/stream/|^/player(/|$)")
_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")
_DROPPED_ON_204 = {"content-length", "content-type"}


def check_origin(origin: str) -> str:
    """An allow-list entry: `*`, or scheme://host[:port] with nothing after it (a browser's
    Origin header never has a path, so an entry with one could never match)."""
    if origin != "*" and not _ORIGIN.match(origin):
        raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], or *)")
    return origin


class PreflightCORSMiddleware(CORSMiddleware):
    """Starlette's middleware with the preflight answers changed, and only those."""

    def preflight_response(self, request_headers: Headers) -> Response:
        checked = super().preflight_response(request_headers)
        headers = {k: v for k, v in checked.headers.items() if k not in _DROPPED_ON_204}
        if checked.status_code < 400:
            return Response(status_code=204, headers=headers)
        origin = request_headers.get("origin", "")
        method = request_headers.get("access-control-request-method", "")
        wanted = request_headers.get("access-control-request-headers", "")
        message = (f"cross-origin {method} from {origin!r}"
                   + (f" with headers {wanted!r}" if wanted else "")
                   + " is not allowed here")
        request_id = secrets.token_hex(8)
        code = CODES["cors.forbidden"]
        body = {"error": {"code": code.code, "message": message, "requestId": request_id}}
        return JSONResponse(body, status_code=code.status,
                            headers={**headers, "X-Request-ID": request_id})


class CorsByPath:
    """Routes each request through the public or the API policy by its path."""

    def __init__(self, app: ASGIApp, api_origins: Collection[str]) -> None:
        self.app = app
        self.public = PreflightCORSMiddleware(
            app, allow_origins=["*"], allow_methods=PUBLIC_METHODS,
            allow_headers=PUBLIC_HEADERS, expose_headers=EXPOSED_HEADERS,
            max_age=PUBLIC_MAX_AGE)
        self.api = PreflightCORSMiddleware(
            app, allow_origins=[check_origin(o) for o in api_origins],
            allow_methods=API_METHODS, allow_headers=API_HEADERS,
            expose_headers=EXPOSED_HEADERS, max_age=API_MAX_AGE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.public if PUBLIC_PATHS.match(scope.get("path", "")) else self.api
        await policy(scope, receive, send)
