"""An encoded audio rendition split into chunks joins into exactly what one encode makes.

The worker runs as its pods run it (each chunk with its own `JOB_COMPLETION_INDEX`),
against the real S3 server; the chunks' playlists and MPDs are joined as the operator joins
them. The source is mono 44.1 kHz AAC, so it is resampled and upmixed, never copied: the
case where the chunks' encoders must land on the one grid of 1024-sample frames that a
single encode would use. Same packets at the same times, none missing or twice, and both
manifests play.
"""

from __future__ import annotations

import itertools
import subprocess
from typing import TYPE_CHECKING

import m3u8
from mpegdash.parser import MPEGDASHParser

from mediaplane.core.manifests import dash, hls
from mediaplane.core.tasks import RenditionChunk, TaskType, VariantSpec, WorkerTask
from tests.support.media import decode_all
from tests.worker.test_worker_s3 import join_segments

if TYPE_CHECKING:
    from pathlib import Path

    from tests.worker.conftest import FfprobeJson, RunWorker, S3Bucket

ASSET = "tenants/acme/assets/mda_audiochunks0123456789abcd/"
SECONDS = 20
# 2 s segments in 6 s chunks: [0, 6), [6, 12) and [12, end). 6 s is 281.25 AAC frames at
# 48 kHz, so the cuts fall inside frames, not on their edges.
VARIANT = {"name": "audio", "type": "audio", "audio_codec": "aac", "audio_bitrate_kbps": 96,
           "segment_seconds": 2}
CHUNKS = {"chunks": 3, "chunk_seconds": 6, "chunk_parallelism": 3}


def packets(ffprobe_json: FfprobeJson, path: Path) -> list[tuple[int, int]]:
    """(pts, duration) of every audio packet, in 1/48000 s."""
    report = ffprobe_json(path, "-select_streams", "a:0", "-show_packets")
    return [(int(p["pts"]), int(p.get("duration", 1024))) for p in report["packets"]]


def test_encoded_audio_in_chunks_is_the_whole_encode_frame_for_frame(
    s3_bucket: S3Bucket, run_worker: RunWorker, tmp_path: Path, ffprobe_json: FfprobeJson,
) -> None:
    source = tmp_path / "mono.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=330:sample_rate=44100:duration={SECONDS}",
                    "-c:a", "aac", "-b:a", "64k", str(source)], check=True, timeout=60)
    url = s3_bucket.put_source(f"{ASSET}source", source, "audio/mp4")

    whole_prefix = f"{ASSET}variants/whole/"
    whole = run_worker(WorkerTask(
        type=TaskType.AUDIO, input_url=url, variant=VariantSpec.model_validate(VARIANT),
        output=s3_bucket.presign_output(whole_prefix)), tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr + whole.result_text

    spec = VariantSpec.model_validate(VARIANT | CHUNKS)
    prefix = f"{ASSET}variants/audio/"
    task = WorkerTask(type=TaskType.AUDIO, input_url=url, variant=spec,
                      output=s3_bucket.presign_output(prefix))
    for index in range(3):
        run = run_worker(task, tmp_path / f"chunk-{index}",
                         extra_env={"JOB_COMPLETION_INDEX": str(index)})
        assert run.returncode == 0, run.stderr + run.result_text
        assert run.result["kind"] == "variant-chunk"

    local = tmp_path / "chunked"
    s3_bucket.fetch_all(prefix, local)
    parts = [RenditionChunk.model_validate_json(
        (local / RenditionChunk.file_name(i)).read_text()) for i in range(3)]
    # What the operator's join does; it refuses chunks whose timelines do not meet.
    playlist = hls.join([hls.parse_media_playlist(p.playlist) for p in parts])
    (local / "media_0.m3u8").write_text(playlist.render())
    (local / "manifest.mpd").write_text(dash.join([p.mpd for p in parts]))

    fetched = tmp_path / "whole-fetched"
    s3_bucket.fetch_all(whole_prefix, fetched)
    one = hls.parse_media_playlist((fetched / whole.result["output"]["playlist"]).read_text())

    chunked = packets(ffprobe_json, join_segments(local, m3u8.load(str(local / "media_0.m3u8"))))
    reference = packets(ffprobe_json, join_segments(
        fetched, m3u8.load(str(fetched / whole.result["output"]["playlist"]))))
    assert [pts for pts, _ in chunked] == [pts for pts, _ in reference]
    assert all(a + d == b for (a, d), (b, _) in itertools.pairwise(chunked)), \
        "a gap or an overlap between packets"
    assert abs(playlist.duration - one.duration) < 1024 / 48000

    # Both manifests are what players read, and every segment they name decodes.
    assert len(m3u8.load(str(local / "media_0.m3u8")).segments) == len(playlist.segments)
    MPEGDASHParser.parse(str(local / "manifest.mpd"))
    decode_all(str(local / "media_0.m3u8"), "-allowed_extensions", "ALL")
    decode_all(str(local / "manifest.mpd"))
