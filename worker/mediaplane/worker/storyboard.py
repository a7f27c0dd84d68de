"""Seek previews: a sprite of tiles and a WebVTT storyboard whose cues name its regions.

The WebVTT names the sprite relatively (`storyboard.jpg#xywh=x,y,w,h`), as Mux and JW
Player lay theirs out; the API serves it with the sprite's name replaced by a presigned
URL, so a player on any origin fetches both without credentials.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import webvtt

from mediaplane.core import commands
from mediaplane.core.tasks import VariantOutput
from mediaplane.worker import process
from mediaplane.worker.errors import EXIT_TRANSCODE, InfraError
from mediaplane.worker.pictures import picture_size
from mediaplane.worker.upload import upload_all

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from mediaplane.core.tasks import PresignedPost, VariantSpec, WorkerTask

log = logging.getLogger(__name__)

TIMEOUT = 1800.0


def timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def storyboard_vtt(sprite: str, tiles: int, columns: int, interval: float, tile_width: int,
                   tile_height: int) -> str:
    """One cue per tile, in time order, each naming its region of the sprite."""
    captions = []
    for index in range(tiles):
        row, column = divmod(index, columns)
        region = f"{column * tile_width},{row * tile_height},{tile_width},{tile_height}"
        captions.append(webvtt.Caption(start=timestamp(index * interval),
                                       end=timestamp((index + 1) * interval),
                                       text=f"{sprite}#xywh={region}"))
    buffer = io.StringIO()
    webvtt.WebVTT(captions=captions).write(buffer)
    return buffer.getvalue()


def _failed(message: str, done: process.Completed | None = None) -> InfraError:
    detail = f": {done.stderr_tail[-400:]}" if done is not None else ""
    return InfraError("TranscodeFailed", message + detail, exit_code=EXIT_TRANSCODE)


def storyboard(task: WorkerTask, spec: VariantSpec, post: PresignedPost, out_dir: Path,
               watch: Sequence[str] = ()) -> VariantOutput:
    """Raises ValueError for a spec that lacks what a storyboard needs; `watch` are the
    stderr phrases that mean a failed read of the input."""
    argv = commands.storyboard_command(task.input_url, spec, out_dir)
    done = process.run(argv, timeout=TIMEOUT, workdir=str(out_dir.parent), watch=watch)
    return publish(spec, post, out_dir, prove(spec, out_dir, done))


def prove(spec: VariantSpec, out_dir: Path, done: process.Completed) -> tuple[int, int]:
    """Proves the sprite ffmpeg wrote in `out_dir` holds the grid, writes its WebVTT beside
    it; the size of one tile. Raises ValueError for a spec without a grid."""
    columns, rows = commands.storyboard_grid(spec)
    tiles = spec.storyboard_tiles or 0
    interval = spec.storyboard_interval_seconds or 0.0
    sprite = out_dir / commands.STORYBOARD_SPRITE
    if not done.ok or not sprite.is_file() or sprite.stat().st_size == 0:
        raise _failed("ffmpeg wrote no storyboard sprite", done)
    width, height = picture_size(sprite) or (0, 0)
    if width < columns or height < rows:
        raise _failed(f"the sprite is {width}x{height}, not a {columns}x{rows} grid")
    tile_width, tile_height = width // columns, height // rows
    (out_dir / commands.STORYBOARD_VTT).write_text(storyboard_vtt(
        commands.STORYBOARD_SPRITE, tiles, columns, interval, tile_width, tile_height))
    log.info("storyboard: %d tiles of %dx%d every %.3f s", tiles, tile_width, tile_height,
             interval)
    return tile_width, tile_height


def publish(spec: VariantSpec, post: PresignedPost, out_dir: Path, tile: tuple[int, int],
            before_manifests: Callable[[], None] | None = None) -> VariantOutput:
    """Uploads a proven sprite, then its WebVTT (`tile`: one tile's size, from `prove`);
    `before_manifests` runs between the two (`upload.upload_all`)."""
    tile_width, tile_height = tile
    # The sprite first: the WebVTT must never name a sprite that is not there yet.
    sent = upload_all(post, out_dir, [commands.STORYBOARD_SPRITE])
    if before_manifests is not None:
        before_manifests()
    sent += upload_all(post, out_dir, [commands.STORYBOARD_VTT])
    return VariantOutput(name=spec.name, files=2, bytes=sent, width=tile_width,
                         height=tile_height, file=commands.STORYBOARD_VTT)
