"""The `mediaplane` command: one typer application for every verb.

The media verbs (upload, ls, get, rm, play, captions, transcript, ai) talk to the REST API
only; `dev`, `tenant`, `token` and `bucket-cors` are the developer's and the admin's tools.
Each group lives in its own module that registers its commands on `app`; heavy imports
stay inside the command functions so that `--help` is quick.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Annotated

import typer

from mediaplane.cli.client import (
    Api,
    CliError,
    Profile,
    resolve_profile,
)

EXIT_CODES = (
    "[bold]Exit codes[/]: 0 done; 1 the API answered an error (its code and message are "
    "printed); 2 bad arguments; 3 no API configured, or it cannot be reached; 4 --wait: an "
    "asset ended failed or quarantined; 5 --wait: not there before --timeout; 130 "
    "interrupted.\n\n"
    "[bold]Where the API is[/]: --api-url and --token (or MEDIAPLANE_API_URL and "
    "MEDIAPLANE_TOKEN); without them, the running dev environment (`mediaplane dev up`), "
    "with a dev token for --tenant (default demo) and --user.")
MEDIA_PANEL = "Media (the REST API)"
ADMIN_PANEL = "Developer and admin"

app = typer.Typer(
    name="mediaplane",
    help="mediaplane: upload media, watch it get ready, play it; and run the dev cluster.",
    epilog=EXIT_CODES,
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class State:
    """What the root options said; the profile is resolved only by verbs that need it."""

    api_url: str | None = None
    token: str | None = None
    tenant: str | None = None
    user: str | None = None
    _profile: Profile | None = field(default=None, repr=False)

    def profile(self) -> Profile:
        if self._profile is None:
            self._profile = resolve_profile(self.api_url, self.token, self.tenant, self.user)
        return self._profile

    def api(self) -> Api:
        return Api(self.profile())


def state(ctx: typer.Context) -> State:
    found = ctx.find_object(State)
    return found if found is not None else State()


@app.callback()
def root(
    ctx: typer.Context,
    api_url: Annotated[str | None, typer.Option(
        envvar="MEDIAPLANE_API_URL", help="Base URL of the API, e.g. https://media.example.com.",
        show_envvar=True)] = None,
    token: Annotated[str | None, typer.Option(
        envvar="MEDIAPLANE_TOKEN", help="Bearer token (a JWT from your identity provider).",
        show_envvar=True)] = None,
    tenant: Annotated[str | None, typer.Option(
        envvar="MEDIAPLANE_TENANT",
        help="Dev environment only: the tenant of the minted token (default demo).")] = None,
    user: Annotated[str | None, typer.Option(
        envvar="MEDIAPLANE_USER",
        help="Dev environment only: the user of the minted token (default dev).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = State(api_url=api_url, token=token, tenant=tenant, user=user)


def _register() -> None:
    from mediaplane.cli import ai, bucketcors, captions, dev, media, tenants, tokens

    for module in (media, captions, ai, dev, tenants, tokens, bucketcors):
        module.register(app)


_register()


def main(argv: list[str] | None = None) -> int:
    """Runs the command; every error leaves as a message on stderr and an exit code
    (typer itself prints usage errors, exit 2, and turns Ctrl-C into 130)."""
    try:
        app(args=argv, prog_name="mediaplane")
    except CliError as error:
        from rich.console import Console

        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[red]error:[/] {escape(str(error))}")
        return error.exit_code
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


if __name__ == "__main__":
    raise SystemExit(main())
