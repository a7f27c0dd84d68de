"""Bearer JWTs: who calls (`sub`) and for which tenant (a claim naming a namespace).

HS256 with a shared secret is the dev setting (`mediaplane token` mints them); production
verifies RS256/ES256 tokens of its identity provider against a JWKS (an https URL, fetched
and cached by PyJWT, or a mounted file).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from mediaplane.api.errors import ApiError
from mediaplane.api.settings import ApiSettings, check_jwks_url
from mediaplane.api.tokencache import VerifiedTokens
from mediaplane.core import names

# A tenant is a namespace: the claim must be a DNS-1123 label (names.TENANT_PATTERN) before
# it goes anywhere near a Kubernetes path or an object key.
MAX_USER_LENGTH = 256
# Identity providers' tokens are a few kilobytes; a larger one is refused unread (its
# base64 and JSON would be decoded before any signature check otherwise).
MAX_TOKEN_BYTES = 16 * 1024


@dataclass(frozen=True)
class Principal:
    tenant: str
    user: str


class TokenVerifier:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.algorithms = settings.algorithms
        self._secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._jwks_client: jwt.PyJWKClient | None = None
        self._jwks_file: jwt.PyJWKSet | None = None
        source = settings.jwt_jwks_url
        if source and source.startswith(("https://", "http://")):
            self._jwks_client = jwt.PyJWKClient(source, cache_keys=True, lifespan=300)
        elif source:
            self._jwks_file = jwt.PyJWKSet.from_dict(json.loads(Path(source).read_text()))
        self._verified: VerifiedTokens[Principal] = VerifiedTokens()

    async def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_BYTES:
            raise ApiError("auth.unauthenticated", f"the bearer token is larger than "
                           f"{MAX_TOKEN_BYTES} bytes")
        known = self._verified.get(token)
        if known is not None:
            return known
        principal, expires_at = await self._verify(token)
        self._verified.put(token, principal, expires_at)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            if algorithm not in self.algorithms:
                raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not accepted")
            key = await self._key_for(algorithm, header, token)
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=[algorithm],
                audience=self.settings.jwt_audience, issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": ["sub", "exp"],
                         "verify_aud": self.settings.jwt_audience is not None})
        except (jwt.PyJWTError, ValueError) as error:
            raise ApiError("auth.unauthenticated", f"invalid bearer token: {error}") from None
        user = claims.get("sub")
        tenant = claims.get(self.settings.tenant_claim)
        if not isinstance(user, str) or not user or len(user) > MAX_USER_LENGTH:
            raise ApiError("auth.unauthenticated", "the token's sub claim is not a user id")
        if not isinstance(tenant, str) or not names.TENANT_PATTERN.match(tenant):
            raise ApiError("auth.unauthenticated",
                           f"the token's {self.settings.tenant_claim!r} claim is not a tenant")
        return Principal(tenant=tenant, user=user), float(claims["exp"])

    def _signing_key(self, client: jwt.PyJWKClient, token: str) -> Any:
        try:
            check_jwks_url(client.uri, allow_private=self.settings.jwt_jwks_allow_private,
                           resolve=True)
        except ValueError as error:
            raise jwt.InvalidKeyError(str(error)) from None
        return client.get_signing_key_from_jwt(token)

    async def _key_for(self, algorithm: str, header: dict[str, Any], token: str) -> Any:
        if algorithm.startswith("HS"):
            if self._secret is None:
                raise jwt.InvalidKeyError("no shared secret configured")
            return self._secret
        if self._jwks_client is not None:
            # The first fetch (and a refresh for an unknown kid) is network I/O; the URL's
            # host is resolved and checked again first (it may resolve elsewhere now).
            client = self._jwks_client
            return (await asyncio.to_thread(self._signing_key, client, token)).key
        if self._jwks_file is not None:
            kid = header.get("kid")
            for candidate in self._jwks_file.keys:
                if kid is None or candidate.key_id == kid:
                    return candidate.key
            raise jwt.InvalidKeyError(f"no key with kid {kid!r}")
        raise jwt.InvalidKeyError("no JWKS configured")
