"""The media verbs on the REST API: upload, ls, get, rm, play, transcript."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from mediaplane.cli.client import (
    API_PREFIX,
    EXIT_API_ERROR,
    EXIT_ASSET_FAILED,
    EXIT_USAGE,
    CliError,
)
from mediaplane.cli.output import (
    Format,
    OutputOption,
    asset_detail,
    assets_table,
    console,
    err,
    print_json,
)

KINDS = ("video", "image", "audio")
STATUSES = ("generating", "pending", "processing", "ready", "quarantined", "failed")
WaitOption = Annotated[bool, typer.Option(
    "--wait", "-w", help="Show each asset's variants live until it is playable or complete "
    "(see --until).")]


class Until(StrEnum):
    PLAYABLE = "playable"
    COMPLETE = "complete"


UntilOption = Annotated[Until, typer.Option(
    help="With --wait: playable (the first renditions) or complete (every variant ended).")]
TimeoutOption = Annotated[float, typer.Option(help="With --wait: give up after this many "
                                              "seconds (exit 5).")]


def _ctx_api(ctx: typer.Context) -> Any:
    from mediaplane.cli.main import state

    return state(ctx).api()


def wait_and_report(ctx: typer.Context, labelled: list[tuple[str, str]], until: Until,
                    timeout: float, output: Format) -> list[dict[str, Any]]:
    """The live view until each asset is finished; exit 4 when one failed."""
    from mediaplane.cli.upload import watch

    with _ctx_api(ctx) as api:
        live_console = err if output is Format.JSON else console
        latest = watch(api, labelled, until.value, live_console, timeout)
    assets = [latest[asset_id] for _, asset_id in labelled]
    for asset in assets:
        if asset.get("player") and output is Format.TABLE:
            console.print(f"{asset['id']}: play it: {asset['player']}")
    if output is Format.JSON:
        print_json(assets)
    if any(a.get("status") in ("failed", "quarantined") for a in assets):
        raise typer.Exit(EXIT_ASSET_FAILED)
    return assets


def upload(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(
        metavar="FILE...", help="Media files (video, image or audio).", exists=True,
        dir_okay=False,
        readable=True)],
    wait: WaitOption = False,
    until: UntilOption = Until.COMPLETE,
    timeout: TimeoutOption = 900.0,
    mime: Annotated[str | None, typer.Option(
        help="The MIME type, when the file name does not tell it (applies to every file).")]
    = None,
    kind: Annotated[str | None, typer.Option(help="video, image or audio (default: from the "
                                             "MIME type).")] = None,
    parallel: Annotated[int, typer.Option(min=1, max=16, help="Files uploaded at once.")] = 3,
    output: OutputOption = Format.TABLE,
) -> None:
    """Upload files, with a progress bar; --wait watches them get ready.

    Each file is hashed, gets an upload URL, is posted straight to storage and finalized.
    The same bytes in the same tenant are the same asset: a second upload says so.
    """
    from mediaplane.cli.upload import guess_mime, upload_all

    if kind is not None and kind not in KINDS:
        raise CliError(f"--kind is one of {', '.join(KINDS)}", EXIT_USAGE)
    typed: list[tuple[Path, str]] = []
    for path in files:
        found = mime or guess_mime(path)
        if not found:
            raise CliError(f"cannot tell the MIME type of {path.name}: pass --mime", EXIT_USAGE)
        typed.append((path, found))
    progress_console = err if output is Format.JSON else console
    with _ctx_api(ctx) as api:
        outcomes = upload_all(api, typed, kind, parallel, progress_console)
    failed = [o for o in outcomes if o.error]
    done = [o for o in outcomes if o.asset_id]
    if wait and done:
        labelled = [(o.path.name, str(o.asset_id)) for o in done]
        wait_and_report(ctx, labelled, until, timeout, output)
    elif output is Format.JSON:
        print_json([{"file": str(o.path), "assetId": o.asset_id,
                     "deduplicated": o.deduplicated, "error": o.error,
                     "status": o.asset.get("status")} for o in outcomes])
    if failed:
        raise typer.Exit(EXIT_API_ERROR)


def list_assets(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="video, image or audio.")] = None,
    status: Annotated[str | None, typer.Option(
        help="generating, pending, processing, ready, quarantined or failed.")] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=200,
                                           help="Assets per page (1 to 200).")] = 50,
    cursor: Annotated[str | None, typer.Option(
        help="The cursor printed after the previous page.")] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
    output: OutputOption = Format.TABLE,
) -> None:
    """List the tenant's assets, one page at a time (filters and cursors of the contract)."""
    if kind is not None and kind not in KINDS:
        raise CliError(f"--kind is one of {', '.join(KINDS)}", EXIT_USAGE)
    if status is not None and status not in STATUSES:
        raise CliError(f"--status is one of {', '.join(STATUSES)}", EXIT_USAGE)
    params: dict[str, str | int] = {"page[size]": page_size}
    if kind:
        params["filter[kind]"] = kind
    if status:
        params["filter[status]"] = status
    if cursor:
        params["cursor"] = cursor
    items: list[dict[str, Any]] = []
    with _ctx_api(ctx) as api:
        while True:
            page, next_cursor = api.page(params)
            items.extend(page)
            if not (all_pages and next_cursor):
                break
            params["cursor"] = next_cursor
    if output is Format.JSON:
        print_json({"data": items, "nextCursor": next_cursor})
        return
    console.print(assets_table(items))
    if next_cursor:
        err.print(f"more: mediaplane ls --cursor {next_cursor}" + "".join(
            f" --{k.split('[')[1].rstrip(']')} {v}" for k, v in params.items()
            if k.startswith("filter[")))


def get(
    ctx: typer.Context,
    asset_id: Annotated[str, typer.Argument(help="The asset id (mda_…).")],
    output: OutputOption = Format.TABLE,
) -> None:
    """Show one asset: its state, variants, captions and player link."""
    with _ctx_api(ctx) as api:
        asset = api.asset(asset_id)
    if output is Format.JSON:
        print_json(asset)
        return
    for table in asset_detail(asset):
        console.print(table)


def remove(
    ctx: typer.Context,
    asset_ids: Annotated[list[str], typer.Argument(help="Asset ids (mda_…).")],
) -> None:
    """Delete assets: their work items and every stored object."""
    problems = 0
    with _ctx_api(ctx) as api:
        for asset_id in asset_ids:
            try:
                api.call("DELETE", f"{API_PREFIX}/{asset_id}")
            except CliError as error:
                err.print(f"{asset_id}: {error}")
                problems += 1
                continue
            console.print(f"deleted {asset_id}")
    if problems:
        raise typer.Exit(EXIT_API_ERROR)


def play(
    ctx: typer.Context,
    asset_id: Annotated[str, typer.Argument(help="The asset id (mda_…).")],
    engine: Annotated[str, typer.Option(help="hls (hls.js), dash (dash.js) or shaka.")]
    = "hls",
    open_browser: Annotated[bool, typer.Option(
        "--open/--no-open", help="Open the link in a browser, where there is one.")] = True,
) -> None:
    """Print the signed player link of a playable asset, and open it where a browser exists."""
    if engine not in ("hls", "dash", "shaka"):
        raise CliError("--engine is hls, dash or shaka", EXIT_USAGE)
    with _ctx_api(ctx) as api:
        asset = api.asset(asset_id)
    link = asset.get("player")
    if not link:
        raise CliError(f"{asset_id} is not playable yet (status {asset.get('status')}); "
                       f"`mediaplane get {asset_id}` shows its variants", EXIT_API_ERROR)
    if engine != "hls":
        link = f"{link}&engine={engine}"
    print(link)
    if open_browser and sys.stdout.isatty():
        _open(link)


def _open(link: str) -> None:
    import webbrowser

    try:
        webbrowser.get()
    except webbrowser.Error:
        err.print("(no browser here: open the link yourself)")
        return
    webbrowser.open(link)


def transcript(
    ctx: typer.Context,
    asset_id: Annotated[str, typer.Argument(help="The asset id (mda_…).")],
    language: Annotated[str, typer.Option("--language", "-l", help="BCP 47, e.g. en-US.")],
    output: OutputOption = Format.TABLE,
) -> None:
    """Print an asset's transcript in a language (made by `captions generate`)."""
    with _ctx_api(ctx) as api:
        data = api.call("GET", f"{API_PREFIX}/{asset_id}/transcript",
                        params={"lang": language})
    if output is Format.JSON:
        print_json(data)
        return
    print(data["text"])


def register(app: typer.Typer) -> None:
    from mediaplane.cli.main import MEDIA_PANEL

    for name, command in (("upload", upload), ("ls", list_assets), ("get", get),
                          ("rm", remove), ("play", play), ("transcript", transcript)):
        app.command(name, rich_help_panel=MEDIA_PANEL)(command)
