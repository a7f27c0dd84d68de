"""Annotated dependencies: the context, the caller, the caller's tenant, path parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mediaplane.api.auth import Principal
from mediaplane.api.context import ApiContext
from mediaplane.api.errors import ApiError
from mediaplane.api.kube import Tenant
from mediaplane.core.names import CROCKFORD

bearer = HTTPBearer(auto_error=False, description="JWT with `sub` and the tenant claim")


async def get_context(request: Request) -> ApiContext:
    """async: FastAPI runs a plain `def` dependency in a worker thread, a hop per request."""
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def current_principal(context: Context, credentials: Credentials) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError("auth.unauthenticated", "send Authorization: Bearer <token>")
    return await context.verifier.verify(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def current_tenant(context: Context, principal: CurrentPrincipal) -> Tenant:
    tenant = await context.tenants.get(principal.tenant)
    if tenant is None:
        raise ApiError("auth.forbidden", f"{principal.tenant!r} is not a tenant here")
    return tenant


CurrentTenant = Annotated[Tenant, Depends(current_tenant)]


async def authenticated(request: Request) -> tuple[ApiContext, Principal, Tenant]:
    """The context, the caller and the caller's tenant in one call: the chain above, for a
    route that takes the `Request` (`body.read_model`) to skip FastAPI's per-request
    dependency solving. Same checks, same errors, in the same order."""
    context = await get_context(request)
    principal = await current_principal(context, await bearer(request))
    return context, principal, await current_tenant(context, principal)


async def optional_principal(context: Context, credentials: Credentials) -> Principal | None:
    """Stream routes: the link is the grant; a bearer, when sent, must be the same user."""
    if credentials is None:
        return None
    return await context.verifier.verify(credentials.credentials)


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


async def stream_caller(request: Request) -> tuple[ApiContext, Principal | None]:
    """The context and the optional caller in one call: `optional_principal`'s chain, for
    the routes a player asks every few seconds (playlists, MPDs) to skip FastAPI's
    per-request dependency solving, as `authenticated` does for upload-url. Same checks,
    same errors."""
    context = await get_context(request)
    return context, await optional_principal(context, await bearer(request))

AssetId = Annotated[str, Path(pattern=rf"^mda_[{CROCKFORD}]{{26}}$",
                              description="asset id, mda_ + 26 Crockford base32 characters",
                              examples=["mda_01h00000000000000000000000"])]
