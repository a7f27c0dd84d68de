"""`mediaplane tenant create T`: a tenant is a namespace with the tenant label.

Uses $KUBECONFIG (or the running dev cluster's when unset). Creating an existing tenant
is not an error: the label and the upload limit are (re)applied.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mediaplane.cli.main import Subparsers


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    tenant = subparsers.add_parser("tenant", help="manage tenants (namespaces)")
    actions = tenant.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create (or update) a tenant")
    create.add_argument("name", help="the tenant: a DNS-1123 label, also the namespace name")
    create.add_argument("--max-upload-bytes", type=int, default=None,
                        help="this tenant's limit on one upload (default: the API's)")
    create.set_defaults(func=cmd_create)


def cmd_create(args: argparse.Namespace) -> int:
    from mediaplane.core.names import TENANT_PATTERN

    if not TENANT_PATTERN.match(args.name):
        print(f"{args.name!r} is not a valid tenant name (lowercase letters, digits, '-')",
              file=sys.stderr)
        return 2
    if "KUBECONFIG" not in os.environ:
        from mediaplane.devcluster.state import default_state_dir, read_env

        env = read_env(default_state_dir())
        if env is not None:
            os.environ["KUBECONFIG"] = env["KUBECONFIG"]
    created = asyncio.run(create_tenant(args.name, args.max_upload_bytes))
    print(f"tenant {args.name} {'created' if created else 'updated'}")
    return 0


async def create_tenant(name: str, max_upload_bytes: int | None) -> bool:
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio.client.exceptions import ApiException

    from mediaplane.core.names import MAX_UPLOAD_ANNOTATION, TENANT_LABEL

    await config.load_kube_config()
    async with client.ApiClient() as api:
        core = client.CoreV1Api(api)
        metadata: dict[str, object] = {"name": name, "labels": {TENANT_LABEL: "true"}}
        if max_upload_bytes is not None:
            metadata["annotations"] = {MAX_UPLOAD_ANNOTATION: str(max_upload_bytes)}
        try:
            await core.create_namespace({"metadata": metadata})  # type: ignore[arg-type]
        except ApiException as error:
            if error.status != 409:
                raise
            await core.patch_namespace(name, {"metadata": metadata})
            return False
    return True
