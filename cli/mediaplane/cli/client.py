"""The CLI's side of the REST contract: where the API is, who the caller is, and calls that
turn the contract's error envelope into one exception.

The REST verbs talk to the API only (httpx), never to Kubernetes. A profile comes from, in
this order: `--api-url`/`--token` (or `MEDIAPLANE_API_URL`/`MEDIAPLANE_TOKEN`), then the
running dev cluster (`mediaplane dev env`'s state: its API URL, and a dev token minted with
its secret for `--tenant`/`--user`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

# Exit codes of every command (documented in `mediaplane --help` and the README).
EXIT_OK = 0
EXIT_API_ERROR = 1  # the API answered an error: its code and message are printed
EXIT_USAGE = 2  # bad arguments or options (also what the argument parser exits with)
EXIT_UNREACHABLE = 3  # no API configured, or it could not be reached
EXIT_ASSET_FAILED = 4  # --wait: an asset ended failed or quarantined
EXIT_TIMEOUT = 5  # --wait: not there before --timeout
EXIT_INTERRUPTED = 130  # Ctrl-C

DEFAULT_TENANT = "demo"
DEFAULT_DEV_USER = "dev"
DEV_TOKEN_TTL = 3600
API_PREFIX = "/api/v1/media"


class CliError(Exception):
    """Ends the command with a message on stderr and an exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ApiCallError(CliError):
    """The API's error envelope: the contract's code, its message and the request id."""

    def __init__(self, status: int, code: str, message: str, request_id: str = "") -> None:
        text = f"{code}: {message}" + (f" (HTTP {status}, request {request_id})"
                                       if request_id else f" (HTTP {status})")
        super().__init__(text, EXIT_API_ERROR)
        self.status, self.code, self.detail, self.request_id = status, code, message, request_id


@dataclass(frozen=True)
class Profile:
    api_url: str
    token: str
    source: str  # where it came from, for messages


def resolve_profile(api_url: str | None, token: str | None, tenant: str | None,
                    user: str | None) -> Profile:
    """The API and the caller, from flags/environment, else the running dev cluster."""
    if api_url and token:
        return Profile(api_url.rstrip("/"), token, "flags or MEDIAPLANE_API_URL/TOKEN")
    from mediaplane.devcluster.state import default_state_dir, read_env

    dev = read_env(default_state_dir()) or {}
    url = api_url or dev.get("MEDIAPLANE_API") or os.environ.get("MEDIAPLANE_API")
    if not url:
        raise CliError("no API to talk to: pass --api-url and --token (or set "
                       "MEDIAPLANE_API_URL and MEDIAPLANE_TOKEN), or start the dev "
                       "environment with `mediaplane dev up`", EXIT_UNREACHABLE)
    if token:
        return Profile(url.rstrip("/"), token, "flags or environment")
    secret = dev.get("MEDIAPLANE_API_JWT_SECRET") or os.environ.get("MEDIAPLANE_API_JWT_SECRET")
    if not secret:
        raise CliError("no token: pass --token (or set MEDIAPLANE_TOKEN); a dev token is "
                       "minted only while the dev environment runs", EXIT_UNREACHABLE)
    from mediaplane.devcluster.tokens import mint_dev_token

    tenant = tenant or DEFAULT_TENANT
    user = user or DEFAULT_DEV_USER
    claim = os.environ.get("MEDIAPLANE_API_TENANT_CLAIM", "tenant")
    return Profile(url.rstrip("/"), mint_dev_token(secret, tenant, user, DEV_TOKEN_TTL, claim),
                   f"dev environment (tenant {tenant}, user {user})")


def problem_of(response: httpx.Response) -> ApiCallError:
    """The contract's envelope, or what a non-conforming answer (a proxy's page) says."""
    try:
        body = response.json()
        error = body["error"]
        return ApiCallError(response.status_code, str(error["code"]), str(error["message"]),
                          str(error.get("requestId") or ""))
    except (ValueError, KeyError, TypeError):
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        return ApiCallError(response.status_code, "http.error",
                          text or response.reason_phrase or "no body")


class Api:
    """A bearer-token client of one profile; methods answer the `data` of the envelope."""

    def __init__(self, profile: Profile, timeout: float = 30.0) -> None:
        self.profile = profile
        self.http = httpx.Client(base_url=profile.api_url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {profile.token}",
                                          "User-Agent": "mediaplane-cli/0.1.0"})

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise CliError(f"cannot reach the API at {self.profile.api_url} "
                           f"({type(error).__name__}: {error})", EXIT_UNREACHABLE) from error
        if response.status_code >= 400:
            raise problem_of(response)
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The envelope's `data` (None for an empty answer such as a delete's 204)."""
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        return response.json()["data"]

    def page(self, params: dict[str, str | int]) -> tuple[list[dict[str, Any]], str | None]:
        body = self.request("GET", API_PREFIX, params=params).json()
        return list(body["data"]), body.get("nextCursor")

    def asset(self, asset_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", f"{API_PREFIX}/{asset_id}")
        return data
