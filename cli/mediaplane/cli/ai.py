"""`mediaplane ai capabilities|image|speech`: generated media, as ordinary assets."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mediaplane.cli.client import API_PREFIX
from mediaplane.cli.media import TimeoutOption, Until, UntilOption, WaitOption, wait_and_report
from mediaplane.cli.output import Format, OutputOption, console, print_json

ai = typer.Typer(help="Generate images and speech as assets; what is on offer.",
                 no_args_is_help=True)


def _api(ctx: typer.Context) -> Any:
    from mediaplane.cli.main import state

    return state(ctx).api()


@ai.command("capabilities")
def capabilities(ctx: typer.Context, output: OutputOption = Format.TABLE) -> None:
    """Image models, sizes, styles, voices and formats on offer, and your budgets."""
    with _api(ctx) as api:
        caps = api.call("GET", f"{API_PREFIX}/ai/capabilities")
    if output is Format.JSON:
        print_json(caps)
        return
    image, speech = caps["image"], caps["speech"]
    if image["available"]:
        console.print(f"images ({image['provider']}): models {', '.join(image['models'])}; "
                      f"sizes {', '.join(image['sizes'])}; aspect ratios "
                      f"{', '.join(image['aspectRatios'])}; styles "
                      f"{', '.join(image['styles']) or '-'}")
    else:
        console.print("images: no image service is configured here")
    voices = ", ".join(f"{v['id']} ({v['language']})" for v in speech["voices"])
    console.print(f"speech: voices {voices}; formats {', '.join(speech['formats'])}")
    for kind, budget in caps["budgets"].items():
        console.print(f"budget {kind}: {budget['remaining']}/{budget['limit']} left, renews "
                      f"{budget['renewsAt']}")


def _generated(ctx: typer.Context, path: str, body: dict[str, Any], wait: bool, until: Until,
               timeout: float, output: Format) -> None:
    with _api(ctx) as api:
        asset = api.call("POST", f"{API_PREFIX}/ai/{path}", json=body)
    if wait:
        wait_and_report(ctx, [(path.removeprefix("generate-"), asset["id"])], until, timeout,
                        output)
        return
    if output is Format.JSON:
        print_json(asset)
        return
    console.print(f"{asset['id']}: {asset['status']} (`mediaplane get {asset['id']}`)")


@ai.command("image")
def image(ctx: typer.Context,
          prompt: Annotated[str, typer.Argument(help="What to draw.")],
          size: Annotated[str, typer.Option(help="A size name, e.g. medium.")] = "medium",
          aspect_ratio: Annotated[str | None, typer.Option(help="W:H, e.g. 16:9.")] = None,
          style: Annotated[str | None, typer.Option(help="A style name.")] = None,
          model: Annotated[str | None, typer.Option(help="One of the image models.")] = None,
          wait: WaitOption = False, until: UntilOption = Until.COMPLETE,
          timeout: TimeoutOption = 600.0, output: OutputOption = Format.TABLE) -> None:
    """Draw a prompt with the configured image service (an asset, after moderation)."""
    body: dict[str, Any] = {"prompt": prompt, "size": size}
    for key, value in (("aspectRatio", aspect_ratio), ("style", style), ("model", model)):
        if value:
            body[key] = value
    _generated(ctx, "generate-image", body, wait, until, timeout, output)


@ai.command("speech")
def speech(ctx: typer.Context,
           text: Annotated[str, typer.Argument(help="What to say.")],
           voice: Annotated[str, typer.Option(help="A voice id.")] = "en_US-joe-medium",
           language: Annotated[str, typer.Option(help="The voice's language.")] = "en-US",
           audio_format: Annotated[str, typer.Option(
               "--format", help="mp3, wav, ogg (Opus) or m4a (AAC).")] = "mp3",
           wait: WaitOption = False, until: UntilOption = Until.COMPLETE,
           timeout: TimeoutOption = 600.0, output: OutputOption = Format.TABLE) -> None:
    """Speak a text with Piper (an audio asset, after moderation)."""
    _generated(ctx, "generate-audio", {"text": text, "voice": voice, "language": language,
                                       "format": audio_format}, wait, until, timeout, output)


def register(app: typer.Typer) -> None:
    from mediaplane.cli.main import MEDIA_PANEL

    app.add_typer(ai, name="ai", rich_help_panel=MEDIA_PANEL)
