"""`mediaplane captions add|ls|approve|reject|generate`: an asset's caption tracks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mediaplane.cli.client import API_PREFIX
from mediaplane.cli.output import Format, OutputOption, captions_table, console, print_json

captions = typer.Typer(help="Caption tracks of an asset: add, list, review, generate.",
                       no_args_is_help=True)
AssetArg = Annotated[str, typer.Argument(help="The asset id (mda_…).")]
LanguageArg = Annotated[str, typer.Argument(help="BCP 47, e.g. en-US.")]


def _api(ctx: typer.Context) -> Any:
    from mediaplane.cli.main import state

    return state(ctx).api()


@captions.command("add")
def add(ctx: typer.Context, asset_id: AssetArg,
        file: Annotated[Path, typer.Argument(help="A WebVTT or SubRip file.", exists=True,
                                             dir_okay=False, readable=True)],
        language: Annotated[str, typer.Option("--language", "-l", help="BCP 47, e.g. en-US.")],
        label: Annotated[str | None, typer.Option(help="What players show, e.g. English.")]
        = None,
        output: OutputOption = Format.TABLE) -> None:
    """Add (or replace) a manual track; it is stored as WebVTT and served in the manifests."""
    body: dict[str, Any] = {"language": language,
                            "content": file.read_text(encoding="utf-8-sig")}
    if label:
        body["label"] = label
    with _api(ctx) as api:
        track = api.call("POST", f"{API_PREFIX}/{asset_id}/captions", json=body)
    if output is Format.JSON:
        print_json(track)
        return
    console.print(f"added {track['language']} captions to {asset_id}")


@captions.command("ls")
def list_tracks(ctx: typer.Context, asset_id: AssetArg,
                language: Annotated[str | None, typer.Option("--language", "-l",
                                                             help="Only this language.")]
                = None,
                output: OutputOption = Format.TABLE) -> None:
    """List the asset's tracks: manual and generated, approved or waiting for review."""
    params = {"lang": language} if language else None
    with _api(ctx) as api:
        tracks = api.call("GET", f"{API_PREFIX}/{asset_id}/captions", params=params)
    if output is Format.JSON:
        print_json(tracks)
        return
    if not tracks:
        console.print(f"{asset_id} has no caption tracks")
        return
    console.print(captions_table(tracks))


def _review(ctx: typer.Context, asset_id: str, language: str, approved: bool) -> None:
    with _api(ctx) as api:
        api.call("PATCH", f"{API_PREFIX}/{asset_id}/captions/{language}",
                 json={"approved": approved})
    console.print(f"{'approved' if approved else 'rejected'} the generated {language} track "
                  f"of {asset_id}")


@captions.command("approve")
def approve(ctx: typer.Context, asset_id: AssetArg, language: LanguageArg) -> None:
    """Approve a generated track: it appears in the HLS and DASH manifests."""
    _review(ctx, asset_id, language, True)


@captions.command("reject")
def reject(ctx: typer.Context, asset_id: AssetArg, language: LanguageArg) -> None:
    """Reject a generated track: it never appears in the manifests."""
    _review(ctx, asset_id, language, False)


@captions.command("generate")
def generate(ctx: typer.Context, asset_id: AssetArg,
             language: Annotated[str, typer.Option("--language", "-l",
                                                   help="BCP 47 of the track, e.g. en-US.")],
             review: Annotated[bool, typer.Option(
                 "--review", help="Keep the track out of the manifests until approved.")]
             = False,
             output: OutputOption = Format.TABLE) -> None:
    """Caption the asset's speech (speech to text); repeats answer the same work's state."""
    with _api(ctx) as api:
        job = api.call("POST", f"{API_PREFIX}/ai/generate-caption",
                       json={"assetId": asset_id, "language": language,
                             "reviewRequired": review})
    if output is Format.JSON:
        print_json(job)
        return
    console.print(f"{language} captions of {asset_id} with {job['model']}: {job['state']}"
                  + (f" ({job['chunksDone']}/{job['chunks']} chunks)"
                     if job.get("chunks") else ""))


def register(app: typer.Typer) -> None:
    from mediaplane.cli.main import MEDIA_PANEL

    app.add_typer(captions, name="captions", rich_help_panel=MEDIA_PANEL)
