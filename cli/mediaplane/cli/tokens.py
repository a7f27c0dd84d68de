"""`mediaplane token --tenant T --user U [--ttl S]`: mint a dev bearer token (HS256).

The secret is $MEDIAPLANE_API_JWT_SECRET, or the running dev cluster's. Production tokens
come from your identity provider instead (RS256/ES256, verified against its JWKS).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    from mediaplane.cli.main import ADMIN_PANEL

    app.command("token", rich_help_panel=ADMIN_PANEL)(token)


def token(
    tenant: Annotated[str, typer.Option(help="The tenant (namespace).")],
    user: Annotated[str, typer.Option(help="The user (the token's sub).")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a dev bearer token (HS256) for a tenant's user."""
    raise typer.Exit(cmd_token(tenant, user, ttl))


def cmd_token(tenant: str, user: str, ttl: int) -> int:
    from mediaplane.core.names import TENANT_PATTERN
    from mediaplane.devcluster.tokens import mint_dev_token

    secret = os.environ.get("MEDIAPLANE_API_JWT_SECRET")
    if not secret:
        from mediaplane.devcluster.state import default_state_dir, read_env

        env = read_env(default_state_dir())
        secret = env.get("MEDIAPLANE_API_JWT_SECRET") if env else None
    if not secret:
        print("no MEDIAPLANE_API_JWT_SECRET and no dev cluster running", file=sys.stderr)
        return 1
    if not TENANT_PATTERN.match(tenant) or ttl <= 0:
        print("--tenant must be a DNS-1123 label and --ttl positive", file=sys.stderr)
        return 2
    claim = os.environ.get("MEDIAPLANE_API_TENANT_CLAIM", "tenant")
    print(mint_dev_token(secret, tenant, user, ttl, claim))
    return 0
