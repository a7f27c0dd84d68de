"""Dev bearer tokens: HS256 with the dev cluster's shared secret, as `mediaplane token`
prints them. Development and tests only; production tokens come from an identity provider
(RS256/ES256, verified against its JWKS)."""

from __future__ import annotations

import time

import jwt


def mint_dev_token(secret: str, tenant: str, user: str, ttl_seconds: int,
                   tenant_claim: str = "tenant") -> str:
    now = int(time.time())
    claims = {"sub": user, tenant_claim: tenant, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")
