"""Segment-parallel rungs: joining the chunks of a long video's rendition.

A video rung split into chunks (`VariantSpec.chunks`, planned by the ladder for long
sources) runs as an Indexed Job: each pod encodes its time range with absolute timestamps,
stores its segments under their final numbers, then its `RenditionChunk` (its playlist and
MPD). Once every index has succeeded, the operator joins those into the rendition's
`media_0.m3u8` and `manifest.mpd`, exactly the files a one-pod encode stores, and the
TranscodeJob succeeds with the same kind of result. From there nothing downstream (status,
masters, signing, players) can tell how the rendition was made.

The join only reads what the chunks stored and writes two deterministic objects, so it can
run again (a second pod event, a Job event, a restarted operator) with the same outcome;
a lock per TranscodeJob keeps two events from doing it at the same moment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pydantic import ValidationError

from mediaplane.core.manifests import dash, hls
from mediaplane.core.tasks import (
    RENDITION_MPD,
    RENDITION_PLAYLIST,
    RenditionChunk,
    VariantOutcome,
    VariantOutput,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mediaplane.core.resources import TranscodeJob
    from mediaplane.operator.context import Context
    from mediaplane.operator.workloads import Pod

log = logging.getLogger(__name__)
# A chunk's JSON holds two small manifests; anything bigger is not one of ours.
MAX_CHUNK_JSON = 1024 * 1024


class JoinError(Exception):
    """The chunks cannot make one rendition (missing, unreadable, or not contiguous)."""


def is_chunked(tj: TranscodeJob) -> bool:
    return tj.spec.variant is not None and tj.spec.variant.chunks is not None


def chunks_done(tj: TranscodeJob, pods: Sequence[Pod]) -> set[int]:
    """The indexes with a pod that succeeded."""
    return {i for p in pods if p.succeeded and (i := p.completion_index) is not None}


def joined(tj: TranscodeJob, parts: Sequence[RenditionChunk]) -> tuple[str, str, VariantOutput]:
    """(playlist, MPD, output) of the whole rendition: pure, for the unit tests too."""
    variant = tj.spec.variant
    if variant is None or variant.chunks is None:
        raise JoinError(f"TranscodeJob {tj.name} is not split into chunks")
    ordered = sorted(parts, key=lambda p: p.index)
    if [p.index for p in ordered] != list(range(variant.chunks)):
        raise JoinError(f"chunks {[p.index for p in ordered]} of {variant.chunks}")
    try:
        playlist = hls.join([hls.parse_media_playlist(p.playlist) for p in ordered]).render()
        mpd = dash.join([p.mpd for p in ordered])
    except ValueError as error:  # both ManifestErrors are ValueErrors
        raise JoinError(str(error)) from None
    first = ordered[0]
    output = VariantOutput(
        name=variant.name, files=sum(p.files for p in ordered) + 2,
        bytes=sum(p.bytes for p in ordered) + len(playlist.encode()) + len(mpd.encode()),
        bandwidth=max((p.bandwidth or 0) for p in ordered) or None,
        width=first.width, height=first.height, codecs=first.codecs,
        duration_seconds=round(hls.parse_media_playlist(playlist).duration, 3),
        playlist=RENDITION_PLAYLIST, mpd=RENDITION_MPD)
    return playlist, mpd, output


async def _read_parts(ctx: Context, prefix: str, count: int) -> list[RenditionChunk]:
    keys = [prefix + RenditionChunk.file_name(i) for i in range(count)]
    found = await asyncio.gather(*(asyncio.to_thread(ctx.storage.head, k) for k in keys))
    unfit = [k.rsplit("/", 1)[-1] for k, info in zip(keys, found, strict=True)
             if info is None or info.size > MAX_CHUNK_JSON]
    if unfit:
        raise JoinError(f"chunk results missing or too large: {', '.join(unfit[:5])}")
    texts = await asyncio.gather(*(asyncio.to_thread(ctx.storage.get_text, k) for k in keys))
    try:
        return [RenditionChunk.model_validate_json(text) for text in texts]
    except ValidationError as error:
        raise JoinError(f"unreadable chunk result: {error.errors()[:1]}") from None


async def join(ctx: Context, tj: TranscodeJob) -> VariantOutcome:
    """Reads every chunk's result, stores the joined manifests, returns the outcome."""
    variant, prefix = tj.spec.variant, tj.spec.output_prefix
    if variant is None or variant.chunks is None or not prefix:
        raise JoinError(f"TranscodeJob {tj.name} is not split into chunks")
    parts = await _read_parts(ctx, prefix, variant.chunks)
    playlist, mpd, output = joined(tj, parts)
    # Media segments are all stored (each chunk stored its JSON last); the manifests
    # naming them go now, the playlist last as a worker would.
    await asyncio.to_thread(ctx.storage.put_text, prefix + RENDITION_MPD, mpd,
                            "application/dash+xml")
    await asyncio.to_thread(ctx.storage.put_text, prefix + RENDITION_PLAYLIST, playlist,
                            "application/vnd.apple.mpegurl")
    log.info("%s/%s: joined %d chunks, %.1f s", tj.namespace, tj.name, variant.chunks,
             output.duration_seconds or 0)
    return VariantOutcome(output=output)


def progress_message(tj: TranscodeJob, done: int) -> str:
    variant = tj.spec.variant
    total = variant.chunks if variant is not None and variant.chunks else 1
    return f"{done} of {total} chunks done"
