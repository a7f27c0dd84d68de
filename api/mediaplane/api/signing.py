"""Stream links: a short HS256 token bound to the user, the tenant, the asset, a scope and
an expiry. The scope is `all` (the whole ladder, its captions, the storyboard, the player)
or one rendition's name: the link of one rendition opens that rendition only.

Players cannot send an Authorization header, so the link itself carries the grant. It is
signed with a key of its own (never the login secret), names exactly one asset, and
expires; a token for another asset, another tenant or (when the request also carries a
bearer) another user is refused with 403.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS

from mediaplane.api.auth import Principal
from mediaplane.api.errors import ApiError
from mediaplane.api.tokencache import VerifiedTokens

ALGORITHM = "HS256"
ALL_SCOPE = "all"
TOKEN_TYPE = "mediaplane.stream"  # noqa: S105 (a claim value, not a secret)


@dataclass(frozen=True)
class StreamGrant:
    tenant: str
    user: str
    asset_id: str
    expires_at: int
    scope: str = "all"


class _KeyCheckedOnce(HMACAlgorithm):
    """HS256 that checks its key's format once. pyjwt's `prepare_key` looks at every call
    for a PEM, SSH or JWK key where an HMAC secret belongs (a third of a token's cost), and
    a first view of a list page of 200 assets signs about 1,400 tokens."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._checked: dict[str | bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        checked = self._checked.get(key)
        if checked is None:
            checked = self._checked[key] = super().prepare_key(key)
        return checked


# Grants issued within the same minute share an expiry (and so a token): an asset page
# read by one user many times a minute signs once. A link lives between TTL - 60 s and TTL.
ISSUE_GRANULARITY = 60


class StreamSigner:
    def __init__(self, key: str, ttl_seconds: int) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds
        self._verified: VerifiedTokens[StreamGrant] = VerifiedTokens()
        # Issued tokens by the grant's fields: a page of 200 assets asks for about 1,400 of
        # them (every rendition's link has its own scope), so the lookup is functools' C
        # cache over a tuple, not a Python-level cache hashing the frozen dataclass.
        self._issued = functools.lru_cache(maxsize=20_000)(self._encode)
        self._jws = PyJWS(algorithms=[])
        self._jws.register_algorithm(ALGORITHM, _KeyCheckedOnce())

    def sign(self, principal: Principal, asset_id: str, now: float | None = None,
             scope: str = ALL_SCOPE) -> StreamGrant:
        issued = int(now if now is not None else time.time())
        issued -= issued % ISSUE_GRANULARITY
        return StreamGrant(tenant=principal.tenant, user=principal.user, asset_id=asset_id,
                           expires_at=issued + self.ttl_seconds, scope=scope)

    def token(self, grant: StreamGrant) -> str:
        return self._issued(grant.tenant, grant.user, grant.asset_id, grant.scope,
                            grant.expires_at)

    def _encode(self, tenant: str, user: str, asset_id: str, scope: str,
                expires_at: int) -> str:
        claims = {"typ": TOKEN_TYPE, "sub": user, "ten": tenant, "ast": asset_id,
                  "scp": scope, "exp": expires_at}
        # What `jwt.encode` signs, byte for byte (its JSON of the claims), through the
        # instance above.
        payload = json.dumps(claims, separators=(",", ":")).encode()
        return self._jws.encode(payload, self._key, algorithm=ALGORITHM)

    def verify(self, token: str | None, asset_id: str,
               variant: str = ALL_SCOPE) -> StreamGrant:
        """The grant of `token` for `asset_id`; `variant` is what the request opens (a
        rendition's name, or `all` for anything else)."""
        if not token:
            raise ApiError("stream.signature.invalid", "the stream link has no token")
        grant = self._verified.get(token)
        if grant is not None:
            if grant.asset_id != asset_id:
                raise ApiError("stream.signature.invalid",
                               "the stream link is for another asset")
        else:
            grant = self._decode(token, asset_id)
            self._verified.put(token, grant, grant.expires_at)
        if grant.scope not in (ALL_SCOPE, variant):
            raise ApiError("stream.signature.invalid",
                           f"the stream link is for rendition {grant.scope} only")
        return grant

    def _decode(self, token: str, asset_id: str) -> StreamGrant:
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM],
                                options={"require": ["exp", "sub", "ten", "ast", "typ"]})
        except jwt.ExpiredSignatureError:
            raise ApiError("stream.signature.expired", "the stream link has expired") from None
        except jwt.PyJWTError:
            raise ApiError("stream.signature.invalid",
                           "the stream link's signature is not valid") from None
        if claims["typ"] != TOKEN_TYPE or claims["ast"] != asset_id:
            raise ApiError("stream.signature.invalid", "the stream link is for another asset")
        return StreamGrant(tenant=str(claims["ten"]), user=str(claims["sub"]),
                           asset_id=asset_id, expires_at=int(claims["exp"]),
                           scope=str(claims.get("scp", ALL_SCOPE)))
