"""`mediaplane token --tenant T --user U [--ttl S]`: mint a dev bearer token (HS256).

The secret is $MEDIAPLANE_API_JWT_SECRET, or the running dev cluster's. Production tokens
come from your identity provider instead (RS256/ES256, verified against its JWKS).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mediaplane.cli.main import Subparsers


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    token = subparsers.add_parser("token", help="print a dev bearer token for a tenant's user")
    token.add_argument("--tenant", required=True)
    token.add_argument("--user", required=True)
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    token.set_defaults(func=cmd_token)


def cmd_token(args: argparse.Namespace) -> int:
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
    if not TENANT_PATTERN.match(args.tenant) or args.ttl <= 0:
        print("--tenant must be a DNS-1123 label and --ttl positive", file=sys.stderr)
        return 2
    claim = os.environ.get("MEDIAPLANE_API_TENANT_CLAIM", "tenant")
    print(mint_dev_token(secret, args.tenant, args.user, args.ttl, claim))
    return 0
