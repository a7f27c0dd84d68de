"""`mediaplane tenant create T`: a tenant is a namespace with the tenant label.

Uses $KUBECONFIG (or the running dev cluster's when unset). Creating an existing tenant
is not an error: the label and the upload limit are (re)applied.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Annotated

import typer

tenant = typer.Typer(help="Tenants (namespaces), with kubectl's credentials: an admin's tool.",
                     no_args_is_help=True)


def register(app: typer.Typer) -> None:
    from mediaplane.cli.main import ADMIN_PANEL

    app.add_typer(tenant, name="tenant", rich_help_panel=ADMIN_PANEL)


@tenant.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The tenant: a DNS-1123 label, also the "
                                        "namespace name.")],
    max_upload_bytes: Annotated[int | None, typer.Option(
        help="This tenant's limit on one upload (default: the API's).")] = None,
) -> None:
    """Create (or update) a tenant: a namespace with the tenant label."""
    raise typer.Exit(cmd_create(name, max_upload_bytes))


def cmd_create(name: str, max_upload_bytes: int | None) -> int:
    from mediaplane.core.names import TENANT_PATTERN

    if not TENANT_PATTERN.match(name):
        print(f"{name!r} is not a valid tenant name (lowercase letters, digits, '-')",
              file=sys.stderr)
        return 2
    if "KUBECONFIG" not in os.environ:
        from mediaplane.devcluster.state import default_state_dir, read_env

        env = read_env(default_state_dir())
        if env is not None:
            os.environ["KUBECONFIG"] = env["KUBECONFIG"]
    created = asyncio.run(create_tenant(name, max_upload_bytes))
    print(f"tenant {name} {'created' if created else 'updated'}")
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
