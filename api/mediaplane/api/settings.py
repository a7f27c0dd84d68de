"""API settings (environment, prefix MEDIAPLANE_API_)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediaplane.api.cors import check_origin


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIAPLANE_API_", extra="ignore", frozen=True)

    # Identity: HS256 with a shared secret (dev), or RS256/ES256 keys from a JWKS.
    jwt_algorithms: str = Field(default="HS256", description="comma-separated allow-list")
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = Field(default=None, description="https URL or a file path")
    # The JWKS URL is refused when its host is (or resolves to) a loopback, private,
    # link-local or otherwise non-public address, before any connection: a misconfigured or
    # tampered setting must not turn the API into a client of internal services (cloud
    # metadata endpoints...). An identity provider inside the cluster (Dex, Keycloak on a
    # Service address) needs this set, on purpose.
    jwt_jwks_allow_private: bool = False
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    tenant_claim: str = "tenant"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)

    # Stream URLs: signed with a key of their own, so a leaked stream link never
    # authenticates anything but streaming that asset until it expires.
    stream_signing_key: SecretStr = SecretStr("")
    stream_url_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    public_url: str = Field(default="http://127.0.0.1:8080",
                            description="external base URL of the API, used in stream links")

    # Origins whose pages may call the JSON API (stream links and the player answer any).
    cors_allowed_origins: str = Field(default="", description="comma-separated origins "
                                      "(scheme://host[:port]) or *; empty = none")

    rate_limit_storage: str = Field(default="memory://",
                                    description="limits storage URI: memory:// or redis://…")
    upload_url_rate: str = "30/minute"
    caption_rate: str = Field(default="10/minute",
                              description="POST /ai/generate-caption, per user")
    speech_model: str = Field(default="whisper-base", description="the operator's speech "
                              "model (MEDIAPLANE_SPEECH_MODEL): requests are idempotent on it")
    transcript_url_ttl_seconds: int = Field(default=900, ge=60, le=3600)

    max_upload_bytes: int = Field(default=5 * 1024**3, ge=1,
                                  description="default per-tenant limit on one upload")
    upload_url_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    max_body_bytes: int = Field(default=2 * 1024**2, ge=1024,
                                description="largest request body (captions are the biggest)")
    tenant_cache_seconds: float = Field(default=10.0, ge=0.0, le=600.0)

    # Bounded answers when a backing service is down or stalled: each Kubernetes request
    # ends within `kube_timeout_seconds`, each storage call connects within
    # `s3_connect_timeout_seconds` and waits `s3_read_timeout_seconds` per read (in
    # `s3_attempts` attempts), and a request that still has no answer after
    # `request_deadline_seconds` gets 503 `unavailable` with Retry-After.
    kube_timeout_seconds: float = Field(default=4.0, gt=0.0, le=60.0)
    s3_connect_timeout_seconds: float = Field(default=1.0, gt=0.0, le=60.0)
    s3_read_timeout_seconds: float = Field(default=3.0, gt=0.0, le=300.0)
    s3_attempts: int = Field(default=2, ge=1, le=10)
    request_deadline_seconds: float = Field(default=5.0, gt=0.0, le=600.0)
    bench_floor: bool = Field(default=False,
                              description="serve /bench/floor (make bench's baseline route)")

    # AI generation: the catalogue shared with the operator (none: speech with the packaged
    # voice, no image service), default budgets per tenant (a namespace annotation
    # overrides each; kept where the rate limits are), and prompt moderation.
    ai_catalog_file: Path | None = None
    ai_image_budget: str = Field(default="50/day", description="units per period")
    ai_speech_budget: str = Field(default="200/day", description="units per period")
    ai_profanity_threshold: float = Field(default=0.8, gt=0.0, le=1.0)
    ai_moderation_url: str | None = Field(default=None, description="an OpenAI-compatible "
                                          "service; POST {url}/v1/moderations")
    ai_moderation_api_key: SecretStr | None = None
    ai_moderation_model: str | None = None
    ai_moderation_timeout_seconds: float = Field(default=5.0, gt=0.0, le=60.0)

    @property
    def algorithms(self) -> list[str]:
        return [a.strip() for a in self.jwt_algorithms.split(",") if a.strip()]

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_allowed_origins.split(",") if o.strip()]

    @model_validator(mode="after")
    def _keys_present(self) -> ApiSettings:
        symmetric = any(a.startswith("HS") for a in self.algorithms)
        if symmetric and self.jwt_secret is None:
            raise ValueError("MEDIAPLANE_API_JWT_SECRET is required for HS* algorithms")
        asymmetric = any(not a.startswith("HS") for a in self.algorithms)
        if asymmetric and not self.jwt_jwks_url:
            raise ValueError("MEDIAPLANE_API_JWT_JWKS_URL is required for RS*/ES* algorithms")
        if self.jwt_jwks_url and "://" in self.jwt_jwks_url:
            check_jwks_url(self.jwt_jwks_url, allow_private=self.jwt_jwks_allow_private)
        for origin in self.cors_origins:
            check_origin(origin)
        if len(self.stream_signing_key.get_secret_value()) < 32:
            raise ValueError("MEDIAPLANE_API_STREAM_SIGNING_KEY must be at least 32 characters")
        return self


_LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain")


def check_jwks_url(url: str, *, allow_private: bool, resolve: bool = False) -> None:
    """Refuses a JWKS URL that is not https, or whose host is (an address literal or a
    local name) or, with `resolve`, resolves to an address that is not public (unless
    `allow_private`). Only a name lookup happens: nothing is sent to the host itself. At
    start-up a name that does not resolve yet is let through (DNS may not be up); the
    verifier resolves and checks again before each fetch of the keys."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not allow_private:
        raise ValueError("MEDIAPLANE_API_JWT_JWKS_URL must be an https URL (or a file path)")
    host = parts.hostname
    if not host:
        raise ValueError("MEDIAPLANE_API_JWT_JWKS_URL has no host")
    if allow_private:
        return
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        if host.lower() == "localhost" or host.lower().endswith(_LOCAL_NAMES):
            raise ValueError(f"MEDIAPLANE_API_JWT_JWKS_URL: {host} is a non-public address; "
                             "set MEDIAPLANE_API_JWT_JWKS_ALLOW_PRIVATE=true for an identity "
                             "provider inside your network") from None
        try:
            found = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError as error:
            if not resolve:
                return
            raise ValueError(f"MEDIAPLANE_API_JWT_JWKS_URL: cannot resolve {host}: {error}"
                             ) from None
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found}
    private = sorted(str(a) for a in addresses if not a.is_global)
    if private:
        raise ValueError(f"MEDIAPLANE_API_JWT_JWKS_URL: {host} is a non-public address "
                         f"({', '.join(private)}); set MEDIAPLANE_API_JWT_JWKS_ALLOW_PRIVATE=true "
                         "for an identity provider inside your network")
