"""The argv builders: the flags that keep hostile inputs contained and rungs aligned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mediaplane.core import commands
from mediaplane.core.tasks import (
    MediaKind,
    PresignedPost,
    SharedOutput,
    TaskType,
    VariantSpec,
    VariantType,
    WorkerTask,
)

URL = "https://s3.example/bucket/tenants/t/assets/a/source?X-Amz-Signature=abc"
OUT = Path("/scratch/out")


def flag(argv: list[str], name: str) -> str:
    """The value following `name`; fails if absent or repeated."""
    assert argv.count(name) == 1, f"{name} appears {argv.count(name)} times in {argv}"
    return argv[argv.index(name) + 1]


def input_options(argv: list[str]) -> list[str]:
    return argv[: argv.index("-i")]


def video_spec(**kw: object) -> VariantSpec:
    fields: dict[str, object] = {"name": "360p", "type": VariantType.VIDEO, "height": 360,
                                 "video_bitrate_kbps": 800, "segment_seconds": 4}
    return VariantSpec.model_validate(fields | kw)


def test_video_reads_only_the_url_with_allowed_protocols_and_demuxers() -> None:
    argv = commands.video_command(URL, video_spec(), OUT)
    before = input_options(argv)
    assert argv[0] == "ffmpeg"
    assert flag(before, "-protocol_whitelist") == "http,https,tcp,tls"
    demuxers = flag(before, "-format_whitelist").split(",")
    assert {"mov", "matroska", "webm", "avi", "mpegts"} <= set(demuxers)
    assert not {"hls", "concat", "dash", "image2"} & set(demuxers)
    assert flag(argv, "-i") == URL
    assert "-nostdin" in argv
    assert flag(argv, "-rw_timeout")
    assert int(flag(before, "-max_pixels")) == commands.MAX_PIXELS[MediaKind.VIDEO]


def test_video_rung_is_h264_video_only_scaled_without_upscaling() -> None:
    argv = commands.video_command(URL, video_spec(height=240, video_bitrate_kbps=400), OUT)
    assert flag(argv, "-map") == "0:v:0"
    assert "-c:a" not in argv
    assert flag(argv, "-c:v") == "libx264"
    assert flag(argv, "-preset") == "veryfast"
    assert flag(argv, "-profile:v") in ("high", "main")
    assert flag(argv, "-pix_fmt") == "yuv420p"
    assert flag(argv, "-vf") == r"scale=w=-2:h=trunc(min(240\,ih)/2)*2"
    assert flag(argv, "-b:v") == "400k"
    assert flag(argv, "-maxrate") == "400k"
    assert flag(argv, "-bufsize") == "800k"
    assert flag(argv, "-map_metadata") == "-1"


def test_video_keyframes_on_the_segment_grid() -> None:
    argv = commands.video_command(URL, video_spec(segment_seconds=6), OUT)
    assert flag(argv, "-force_key_frames") == "expr:gte(t,n_forced*6)"
    assert flag(argv, "-sc_threshold") == "0"
    assert flag(argv, "-seg_duration") == "6"


def test_rendition_is_cmaf_for_hls_and_dash() -> None:
    argv = commands.video_command(URL, video_spec(), OUT)
    assert flag(argv, "-f") == "dash"
    assert flag(argv, "-dash_segment_type") == "mp4"
    assert flag(argv, "-hls_playlist") == "1"
    assert flag(argv, "-use_template") == "1"
    assert flag(argv, "-use_timeline") == "1"
    assert flag(argv, "-init_seg_name") == "init.m4s"
    assert flag(argv, "-media_seg_name") == "seg-$Number%05d$.$ext$"
    assert argv[-1] == str(OUT / "manifest.mpd")


@pytest.mark.parametrize(("codec", "encoder"), [("aac", "aac"), ("opus", "libopus")])
def test_audio_rendition(codec: str, encoder: str) -> None:
    spec = VariantSpec.model_validate({"name": "a", "type": "audio", "audio_codec": codec,
                                       "audio_bitrate_kbps": 96})
    argv = commands.audio_command(URL, spec, OUT)
    assert flag(argv, "-map") == "0:a:0"
    assert flag(argv, "-c:a") == encoder
    assert flag(argv, "-b:a") == "96k"
    assert flag(argv, "-ar") == "48000"
    assert "-c:v" not in argv
    assert flag(argv, "-hls_playlist") == "1"
    assert flag(argv, "-dash_segment_type") == "mp4"  # Opus would default to WebM
    # the audio of a video asset comes from a video container
    assert {"mp3", "wav", "mov", "mpegts", "avi"} <= set(flag(argv, "-format_whitelist")
                                                          .split(","))


def test_audio_copied_when_the_plan_says_so() -> None:
    spec = VariantSpec(name="audio", type=VariantType.AUDIO, audio_codec="aac",
                       audio_bitrate_kbps=128, audio_copy=True)
    argv = commands.audio_command(URL, spec, OUT)
    assert flag(argv, "-c:a") == "copy"
    assert not {"-b:a", "-ar", "-ac"} & set(argv)
    assert flag(argv, "-seg_duration") == "4"


def test_the_probes_local_copy_is_read_through_the_file_protocol_only(tmp_path: Path) -> None:
    """The probe's pod copies the audio from the source it downloaded and checked: no
    network options, no other protocol, the same demuxer allow-list and pixel cap."""
    spec = VariantSpec(name="audio", type=VariantType.AUDIO, audio_codec="aac",
                       audio_bitrate_kbps=128, audio_copy=True)
    local = tmp_path / "source"
    argv = commands.audio_command(local, spec, OUT)
    network = commands.audio_command(URL, spec, OUT)
    assert flag(argv, "-i") == f"file:{local}"
    assert flag(argv, "-protocol_whitelist") == "file"
    assert not {"-reconnect", "-rw_timeout"} & set(input_options(argv))
    for same in ("-format_whitelist", "-max_pixels"):
        assert flag(argv, same) == flag(network, same)
    assert argv[argv.index("-i") + 2:] == network[network.index("-i") + 2:]


def test_image_resizes_without_upscaling_and_strips_metadata() -> None:
    spec = VariantSpec(name="w640", type=VariantType.IMAGE, width=640, image_format="webp")
    argv = commands.image_command(URL, spec, OUT)
    assert set(flag(argv, "-format_whitelist").split(",")) == set(
        commands.DEMUXERS[MediaKind.IMAGE])
    assert flag(argv, "-vf") == r"scale=w=min(640\,iw):h=-1"
    assert flag(argv, "-map_metadata") == "-1"
    assert flag(argv, "-c:v") == "libwebp"
    assert flag(argv, "-frames:v") == "1"
    assert argv[-1] == str(OUT / "image.webp")

    jpeg = commands.image_command(URL, spec.model_copy(update={"image_format": "jpeg"}), OUT)
    assert flag(jpeg, "-c:v") == "mjpeg"
    assert jpeg[-1] == str(OUT / "image.jpg")


def test_poster_seeks_before_the_input() -> None:
    spec = VariantSpec(name="poster", type=VariantType.POSTER, poster_at_seconds=1.5,
                       image_format="jpeg")
    argv = commands.poster_command(URL, spec, OUT)
    assert flag(input_options(argv), "-ss") == "1.500"
    assert flag(argv, "-map") == "0:v:0"
    assert flag(argv, "-frames:v") == "1"
    assert "min(1280\\,iw)" in flag(argv, "-vf")
    assert argv[-1] == str(OUT / "poster.jpg")
    assert flag(commands.poster_command(URL, spec, OUT, at_seconds=0), "-ss") == "0.000"


def test_probe_reads_a_local_file_with_the_kinds_demuxers_only() -> None:
    argv = commands.probe_command("/scratch/source", MediaKind.VIDEO)
    assert argv[0] == "ffprobe"
    assert flag(argv, "-protocol_whitelist") == "file"
    assert flag(argv, "-format_whitelist") == commands.demuxer_allowlist(MediaKind.VIDEO)
    assert flag(argv, "-of") == "json"
    assert int(flag(argv, "-max_pixels")) == commands.MAX_PIXELS[MediaKind.VIDEO]
    assert "-show_frames" not in argv
    image = commands.probe_command("/scratch/source", MediaKind.IMAGE)
    assert flag(image, "-read_intervals") == "%+#2"  # decodes at most two frames


def test_missing_spec_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="height"):
        commands.video_command(URL, VariantSpec(name="x", type=VariantType.VIDEO), OUT)
    with pytest.raises(ValueError, match="audio_codec"):
        commands.audio_command(URL, VariantSpec(name="x", type=VariantType.AUDIO), OUT)


def test_a_chunk_seeks_accurately_and_keeps_absolute_timestamps() -> None:
    argv = commands.video_command(URL, video_spec(), OUT, chunk=(120.0, 180.0))
    before = input_options(argv)
    assert flag(before, "-ss") == "120.000"
    assert "-start_at_zero" in before
    assert "-copyts" in argv
    assert flag(argv, "-to") == "180.000"
    assert flag(argv, "-format_options") == "movflags=+frag_discont"
    last = commands.video_command(URL, video_spec(), OUT, chunk=(240.0, None))
    assert "-to" not in last, "the last chunk runs to the end of the source"
    whole = commands.video_command(URL, video_spec(), OUT)
    assert not {"-ss", "-copyts", "-to", "-format_options"} & set(whole)


def test_chunk_segments_are_renamed_to_their_place_in_the_rendition() -> None:
    assert commands.renumbered("seg-00001.m4s", 61) == "seg-00061.m4s"
    assert commands.renumbered("seg-00015.m4s", 61) == "seg-00075.m4s"
    with pytest.raises(ValueError, match="not a segment"):
        commands.renumbered("../seg-00001.m4s", 2)


def test_an_audio_chunk_starts_early_on_the_frame_grid_and_keeps_only_its_frames() -> None:
    spec = VariantSpec(name="audio", type=VariantType.AUDIO, audio_codec="aac",
                       audio_bitrate_kbps=128, segment_seconds=4, chunks=3, chunk_seconds=60)
    argv = commands.audio_command(URL, spec, OUT, chunk=(60.0, 120.0))
    before = input_options(argv)
    # The cut is one frame early (59.978667 s); the seek 8 frames before the frame holding
    # it: frame 2811 - 8 = 2803, 2803 * 1024 samples at 48 kHz.
    assert flag(before, "-ss") == f"{2803 * 1024 / 48000:.6f}"
    assert "-copyts" in argv
    assert "-start_at_zero" in before
    assert flag(argv, "-af") == "aresample=48000,asetpts=N/SR/TB+2870272/SR/TB"
    assert flag(argv, "-bsf:a") == (r"noise=drop=lt(pts*tb\,59.978667)"
                                    r"+gte(pts*tb\,119.978667)")
    assert flag(argv, "-to") == f"{120 + 8 * 1024 / 48000:.6f}"
    assert flag(argv, "-format_options") == "movflags=+frag_discont"
    first = commands.audio_command(URL, spec, OUT, chunk=(0.0, 60.0))
    assert flag(first, "-bsf:a") == r"noise=drop=gte(pts*tb\,59.978667)"
    assert flag(input_options(first), "-ss") == "0.000000"
    last = commands.audio_command(URL, spec, OUT, chunk=(120.0, None))
    assert "-to" not in last
    assert flag(last, "-bsf:a") == r"noise=drop=lt(pts*tb\,119.978667)"
    with pytest.raises(ValueError, match="only an encoded AAC"):
        commands.audio_command(URL, spec.model_copy(update={"audio_copy": True}), OUT,
                               chunk=(0.0, 60.0))


def output_options(argv: list[str]) -> list[list[str]]:
    """Each output's options and its path (after the filter graph)."""
    outputs: list[list[str]] = []
    current: list[str] = []
    for arg in argv[argv.index("-filter_complex") + 2:]:
        current.append(arg)
        if arg.endswith(commands.MPD_NAME):
            outputs.append(current)
            current = []
    return outputs


def test_shared_rungs_decode_once_and_encode_each_as_alone() -> None:
    rungs = [video_spec(name=f"{h}p", height=h, video_bitrate_kbps=h * 3) for h in (360, 720)]
    argv = commands.shared_video_command(URL, [(r, OUT / r.name) for r in rungs])
    assert argv.count("-i") == 1
    assert input_options(argv) == input_options(commands.video_command(URL, rungs[0], OUT))
    graph = flag(argv, "-filter_complex")
    assert graph.startswith("[0:v:0]split=2")
    assert r"scale=h=trunc(min(360\,ih)/2)*2:w=-2" in graph
    assert r"scale=h=trunc(min(720\,ih)/2)*2:w=-2" in graph
    outputs = output_options(argv)
    assert [o[-1] for o in outputs] == [str(OUT / r.name / commands.MPD_NAME) for r in rungs]
    for rung, options in zip(rungs, outputs, strict=True):
        alone = commands.video_command(URL, rung, OUT / rung.name)
        at = alone.index("-vf")  # the scaler: in the graph when shared
        encoder = [*alone[alone.index("-map") + 2:at], *alone[at + 2:]]
        assert options[0] == "-map"
        assert options[2:] == encoder, f"{rung.name} is encoded as it would be alone"


def test_the_storyboard_shares_the_decode_with_its_own_filters_and_still_output() -> None:
    rung = video_spec()
    board = VariantSpec(name="storyboard", type=VariantType.STORYBOARD, width=160,
                        storyboard_interval_seconds=2.0, storyboard_columns=5,
                        storyboard_tiles=5)
    argv = commands.shared_video_command(URL, [(rung, OUT / "a"), (board, OUT / "b")])
    graph = flag(argv, "-filter_complex")
    assert graph.startswith("[0:v:0]split=2")
    alone = flag(commands.storyboard_command(URL, board, OUT / "b"), "-vf")
    assert alone == (r"select=expr=gte(t\,selected_n*2.000),scale=w=trunc(iw*sar/2)*2:h=ih,"
                     "setsar=sar=1,scale=w=160:h=-2,tile=layout=5x1")
    for step in (r"select=expr=gte(t\,selected_n*2.000)", "setsar=sar=1",
                 "scale=h=-2:w=160", "tile=layout=5x1"):
        assert step in graph, step
    assert argv[-1] == str(OUT / "b" / commands.STORYBOARD_SPRITE)
    sprite = argv[len(argv) - 1 - argv[::-1].index("-map"):]  # the last output's options
    assert flag(sprite, "-frames:v") == "1"
    assert flag(sprite, "-c:v") == "mjpeg"


POST = PresignedPost(url="https://s3.example/bucket", fields={"policy": "p"},
                     key_prefix="tenants/t/assets/a/variants/v/")


def rendition_task(spec: VariantSpec, *also: VariantSpec, chunks: int | None = None
                   ) -> WorkerTask:
    if chunks is not None:
        spec = spec.model_copy(update={"chunks": chunks, "chunk_seconds": 8})
    return WorkerTask(type=TaskType.producing(spec.type), input_url=URL, output=POST,
                      variant=spec,
                      also=[SharedOutput(variant=v, output=POST) for v in also] or None)


def test_a_rendition_pods_first_command_is_the_one_the_worker_runs_in_its_scratch() -> None:
    """What the operator renders for a pod to start early (`first_command`) is the command
    the worker would run, writing into the same directories under its scratch directory."""
    rung = video_spec()
    first = commands.first_command(rendition_task(rung))
    assert first is not None
    assert first.argv == commands.video_command(URL, rung, Path(commands.OUT_DIR))
    assert first.dirs == [commands.OUT_DIR]
    audio = VariantSpec(name="audio", type=VariantType.AUDIO, audio_codec="aac",
                        audio_bitrate_kbps=128)
    first = commands.first_command(rendition_task(audio))
    assert first is not None
    assert first.argv == commands.audio_command(URL, audio, Path(commands.OUT_DIR))
    board = VariantSpec(name="storyboard", type=VariantType.STORYBOARD, width=160,
                        storyboard_interval_seconds=2.0, storyboard_columns=5,
                        storyboard_tiles=5)
    shared = commands.first_command(rendition_task(rung, video_spec(name="720p", height=720),
                                                   board))
    assert shared is not None
    assert shared.dirs == ["out-0", "out-1", "out-2"]
    assert shared.argv == commands.shared_video_command(URL, [
        (rung, Path("out-0")), (video_spec(name="720p", height=720), Path("out-1")),
        (board, Path("out-2"))])
    assert json.loads(shared.to_json()) == {"dirs": shared.dirs, "argv": shared.argv}


def test_no_first_command_where_the_first_step_is_not_one_known_command() -> None:
    probe = WorkerTask(type=TaskType.PROBE, input_url=URL)
    poster = VariantSpec(name="poster", type=VariantType.POSTER, width=640)
    board = VariantSpec(name="storyboard", type=VariantType.STORYBOARD, width=160,
                        storyboard_interval_seconds=2.0, storyboard_columns=5,
                        storyboard_tiles=5)
    mismatched = WorkerTask(type=TaskType.AUDIO, input_url=URL, output=POST,
                            variant=video_spec())
    invalid = rendition_task(VariantSpec(name="360p", type=VariantType.VIDEO))  # no height
    for task in (probe, rendition_task(poster), rendition_task(board), mismatched, invalid,
                 rendition_task(video_spec(), chunks=3)):
        assert commands.first_command(task) is None, task


def test_a_probe_that_encodes_the_lowest_rung_starts_with_that_encode() -> None:
    """The probe's own steps (download, ffprobe) are not one command known in advance, but
    the rung its pod encodes meanwhile is: it is the pod's first command, in the same
    directory as a rung pod's. The copy of the audio the task asks for comes out of the
    same ffmpeg, in a directory of its own; without a rung, the audio waits for the
    verdict."""
    rung = video_spec(name="240p", height=240)
    audio = VariantSpec(name="audio", type=VariantType.AUDIO, audio_codec="aac",
                        audio_bitrate_kbps=128, audio_copy=True)
    probe = WorkerTask(type=TaskType.PROBE, input_url=URL, also=[
        SharedOutput(variant=audio, output=POST),
        SharedOutput(variant=rung, output=POST, max_source_seconds=300)])
    first = commands.first_command(probe)
    assert first is not None
    assert first.argv == commands.rung_and_audio_command(
        URL, rung, audio, Path(commands.OUT_DIR), Path(commands.AUDIO_OUT_DIR))
    assert first.dirs == [commands.OUT_DIR, commands.AUDIO_OUT_DIR]
    rung_only = probe.model_copy(update={"also": probe.also[1:] if probe.also else None})
    only = commands.first_command(rung_only)
    assert only is not None
    assert only.argv == commands.video_command(URL, rung, Path(commands.OUT_DIR))
    assert only.dirs == [commands.OUT_DIR]
    encoded = audio.model_copy(update={"audio_copy": False})
    with_encoded = probe.model_copy(update={"also": [
        SharedOutput(variant=encoded, output=POST), *(probe.also or [])[1:]]})
    assert commands.first_command(with_encoded) == only, "an encode is not made beside"
    audio_only = probe.model_copy(update={"also": probe.also[:1] if probe.also else None})
    assert commands.first_command(audio_only) is None
