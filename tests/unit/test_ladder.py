"""The ladder never upscales and always gives a source something to play."""

from __future__ import annotations

from mediaplane.core.ladder import Ladder, first_wave, plan_variants, shared_decode
from mediaplane.core.tasks import MediaKind, ProbeResult, VariantSpec, VariantType


def probe(**fields: object) -> ProbeResult:
    base: dict[str, object] = {"detected_mime": "video/mp4", "format_name": "mov,mp4"}
    return ProbeResult.model_validate({**base, **fields})


def test_video_360p_gets_no_rung_above_its_height() -> None:
    plan = plan_variants(MediaKind.VIDEO, Ladder(), probe(width=640, height=360, has_video=True,
                                                          has_audio=True, duration_seconds=4))
    assert [(v.name, v.type) for v in plan] == [
        ("240p", VariantType.VIDEO), ("360p", VariantType.VIDEO), ("audio", VariantType.AUDIO),
        ("poster", VariantType.POSTER), ("storyboard", VariantType.STORYBOARD)]
    assert plan[0].height == 240
    assert plan[-2].poster_at_seconds == 1.0


def test_tiny_video_gets_one_rung_at_its_own_even_height() -> None:
    plan = plan_variants(MediaKind.VIDEO, Ladder(), probe(width=160, height=121, has_video=True))
    video = [v for v in plan if v.type is VariantType.VIDEO]
    assert [(v.name, v.height) for v in video] == [("120p", 120)]
    assert all(v.type is not VariantType.AUDIO for v in plan), "no audio stream, no audio rung"


def test_poster_is_taken_inside_a_short_clip() -> None:
    plan = plan_variants(MediaKind.VIDEO, Ladder(), probe(width=640, height=360, has_video=True,
                                                          duration_seconds=1.0))
    poster = next(v for v in plan if v.type is VariantType.POSTER)
    assert poster.poster_at_seconds == 0.5


def test_storyboard_tiles_cover_the_duration_and_stay_bounded() -> None:
    def storyboard(duration: float, **config: object) -> VariantSpec:
        ladder = Ladder.model_validate({"storyboard": config} if config else {})
        plan = plan_variants(MediaKind.VIDEO, ladder, probe(
            width=640, height=360, has_video=True, duration_seconds=duration))
        return next(v for v in plan if v.type is VariantType.STORYBOARD)

    clip = storyboard(12.0)
    assert (clip.storyboard_interval_seconds, clip.storyboard_tiles, clip.storyboard_columns,
            clip.width) == (2.0, 6, 6, 160)
    odd = storyboard(12.04)  # a tail of one frame still gets its tile
    assert (odd.storyboard_tiles, odd.storyboard_columns) == (7, 7)
    film = storyboard(2 * 3600 + 1.0)  # tiles further apart, never more than max_tiles
    assert film.storyboard_tiles == 100
    assert film.storyboard_interval_seconds is not None
    assert film.storyboard_interval_seconds * 100 >= 7201.0
    assert film.storyboard_columns == 10
    custom = storyboard(60.0, interval_seconds=5, columns=4, tile_width=240)
    assert (custom.storyboard_tiles, custom.storyboard_columns, custom.width) == (12, 4, 240)
    no_duration = plan_variants(MediaKind.VIDEO, Ladder(), probe(width=640, height=360,
                                                                 has_video=True))
    assert all(v.type is not VariantType.STORYBOARD for v in no_duration)
    off = plan_variants(MediaKind.VIDEO, Ladder.model_validate({"storyboard": None}), probe(
        width=640, height=360, has_video=True, duration_seconds=10))
    assert all(v.type is not VariantType.STORYBOARD for v in off)


def test_image_rungs_do_not_upscale() -> None:
    plan = plan_variants(MediaKind.IMAGE, Ladder(), probe(detected_mime="image/png",
                                                          width=800, height=600))
    assert {v.name for v in plan} == {"w640-webp", "w320-webp", "w640-jpeg"}
    small = plan_variants(MediaKind.IMAGE, Ladder(), probe(detected_mime="image/png", width=100))
    assert [(v.name, v.width) for v in small] == [("w100-webp", 100)]


def test_audio_gets_aac_and_opus() -> None:
    plan = plan_variants(MediaKind.AUDIO, Ladder(), probe(detected_mime="audio/mpeg",
                                                          has_audio=True))
    assert [(v.audio_codec, v.audio_bitrate_kbps) for v in plan] == [("aac", 128), ("opus", 96)]


def test_ladder_is_configurable() -> None:
    ladder = Ladder.model_validate({"video": [{"name": "low", "height": 144,
                                               "video_bitrate_kbps": 200}], "poster": False})
    plan = plan_variants(MediaKind.VIDEO, ladder, probe(width=640, height=360, has_video=True))
    assert [v.name for v in plan] == ["low"]


def test_first_wave_is_what_makes_a_video_playable() -> None:
    plan = plan_variants(MediaKind.VIDEO, Ladder(), probe(width=1280, height=720, has_video=True,
                                                          has_audio=True, duration_seconds=30))
    assert [v.name for v in plan][:4] == ["240p", "360p", "480p", "720p"]
    assert first_wave(plan) == {"240p", "audio"}
    image_plan = plan_variants(MediaKind.IMAGE, Ladder(), probe(detected_mime="image/png",
                                                                width=2000))
    assert first_wave(image_plan) == {v.name for v in image_plan}


def rungs(duration: float, height: int = 1080, **chunking: object) -> list[VariantSpec]:
    ladder = Ladder.model_validate({"chunking": chunking} if chunking else {})
    plan = plan_variants(MediaKind.VIDEO, ladder, probe(width=height * 16 // 9, height=height,
                                                        has_video=True, has_audio=True,
                                                        duration_seconds=duration))
    return [v for v in plan if v.type is VariantType.VIDEO]


def test_a_short_video_keeps_one_pod_per_rung() -> None:
    assert all(v.chunks is None for v in rungs(299.9))
    assert all(v.chunks is None for v in rungs(3600, **{"min_seconds": 7200}))


def test_a_long_video_is_split_into_whole_segments_on_every_rung() -> None:
    plan = rungs(3600)
    assert {(v.chunks, v.chunk_seconds, v.chunk_parallelism) for v in plan} == {(60, 60, 8)}
    # The last chunk is 0.5 to 1.5 chunks long, so a duration a little too long still
    # leaves it frames: 304 s in 60 s chunks is 5 chunks, the last from 240 s to the end.
    five = rungs(304)[0]
    assert (five.chunks, five.chunk_range(0), five.chunk_range(4)) == (5, (0.0, 60.0),
                                                                        (240.0, None))
    assert [five.chunk_first_segment(i) for i in range(5)] == [1, 16, 31, 46, 61]
    # A chunk length that is not a whole number of segments is rounded to one.
    odd = rungs(600, chunk_seconds=30, parallelism=3)[0]
    assert (odd.chunk_seconds, odd.chunks, odd.chunk_parallelism) == (32, 19, 3)


def test_chunking_only_the_lowest_rung() -> None:
    plan = rungs(900, rungs="lowest")
    assert [(v.name, v.chunks) for v in plan] == [
        ("240p", 15), ("360p", None), ("480p", None), ("720p", None), ("1080p", None)]


def audio_of(**audio: object) -> VariantSpec:
    stereo_aac: dict[str, object] = {"audio_codec": "aac", "audio_profile": "LC",
                                     "audio_channels": 2, "audio_sample_rate": 48000,
                                     "audio_bitrate": 128_000}
    specs = plan_variants(MediaKind.VIDEO, Ladder(), probe(
        height=720, has_video=True, has_audio=True, duration_seconds=60,
        **{**stereo_aac, **audio}))
    return next(v for v in specs if v.type is VariantType.AUDIO)


def test_a_videos_stereo_aac_is_copied_not_encoded() -> None:
    assert audio_of().audio_copy
    assert audio_of(audio_sample_rate=44100, audio_bitrate=192_000).audio_copy


def test_audio_unlike_the_rung_is_encoded() -> None:
    for different in ({"audio_codec": "mp3"}, {"audio_profile": "HE-AAC"},
                      {"audio_channels": 1}, {"audio_channels": 6},
                      {"audio_sample_rate": 32000}, {"audio_bitrate": 320_000},
                      {"audio_bitrate": None}):
        assert not audio_of(**different).audio_copy, different


def test_audio_passthrough_can_be_turned_off() -> None:
    ladder = Ladder.model_validate({"audio_passthrough": False})
    specs = plan_variants(MediaKind.VIDEO, ladder, probe(
        height=720, has_video=True, has_audio=True, duration_seconds=60, audio_codec="aac",
        audio_profile="LC", audio_channels=2, audio_sample_rate=48000, audio_bitrate=128_000))
    assert not next(v for v in specs if v.type is VariantType.AUDIO).audio_copy


def test_a_long_videos_encoded_audio_is_split_like_its_rungs_a_copied_one_is_not() -> None:
    def audio(duration: float, **chunking: object) -> VariantSpec:
        ladder = Ladder.model_validate({"chunking": chunking} if chunking else {})
        plan = plan_variants(MediaKind.VIDEO, ladder, probe(
            width=1920, height=1080, has_video=True, has_audio=True,
            duration_seconds=duration, audio_codec="mp3", audio_channels=2))
        return next(v for v in plan if v.type is VariantType.AUDIO)

    split = audio(3600)
    assert (split.chunks, split.chunk_seconds, split.chunk_parallelism) == (60, 60, 8)
    assert not split.audio_copy
    assert audio(3600, rungs="lowest").chunks == 60, "the audio decides playable too"
    assert audio(3600, audio=False).chunks is None
    assert audio(120).chunks is None
    stereo_aac = {"audio_codec": "aac", "audio_profile": "LC", "audio_channels": 2,
                  "audio_sample_rate": 48000, "audio_bitrate": 128_000}
    copied = next(v for v in plan_variants(MediaKind.VIDEO, Ladder(), probe(
        height=720, has_video=True, has_audio=True, duration_seconds=3600, **stereo_aac))
        if v.type is VariantType.AUDIO)
    assert copied.audio_copy
    assert copied.chunks is None


def test_the_rungs_after_the_first_wave_share_one_decode() -> None:
    plan = plan_variants(MediaKind.VIDEO, Ladder(), probe(width=1920, height=1080,
                                                          has_video=True, has_audio=True,
                                                          duration_seconds=60))
    assert [v.name for v in shared_decode(plan)] == ["360p", "480p", "720p", "1080p",
                                                     "storyboard"]
    small = plan_variants(MediaKind.VIDEO, Ladder(), probe(width=640, height=360,
                                                           has_video=True, has_audio=True,
                                                           duration_seconds=60))
    assert [v.name for v in shared_decode(small)] == ["360p", "storyboard"]
    no_storyboard = [v for v in small if v.type is not VariantType.STORYBOARD]
    assert shared_decode(no_storyboard) == [], "one variant after the first wave: alone"
    assert shared_decode([v for v in plan if v.name in ("240p", "audio", "storyboard")]) == [
        ], "a storyboard leads no shared decode: a video rung does"
    long = plan_variants(MediaKind.VIDEO, Ladder(), probe(width=1920, height=1080,
                                                          has_video=True, has_audio=True,
                                                          duration_seconds=3600))
    assert shared_decode(long) == [], "segment-parallel rungs keep their Indexed Jobs"
    lowest_only = plan_variants(MediaKind.VIDEO, Ladder.model_validate(
        {"chunking": {"rungs": "lowest"}}), probe(width=1920, height=1080, has_video=True,
                                                 has_audio=True, duration_seconds=3600))
    assert [v.name for v in lowest_only
            if v.type is VariantType.VIDEO and v.chunks is not None] == ["240p"]
    assert shared_decode(lowest_only) == [], "a long video's whole rungs stay in parallel"


def test_a_shared_decode_leaves_out_rungs_above_1080p_and_beyond_six() -> None:
    tall = Ladder.model_validate({"video": [
        {"name": f"{h}p", "height": h, "video_bitrate_kbps": h * 4}
        for h in (144, 240, 288, 360, 432, 480, 540, 720, 1080, 2160)]})
    plan = plan_variants(MediaKind.VIDEO, tall, probe(width=3840, height=2160, has_video=True,
                                                      has_audio=True, duration_seconds=60))
    assert [v.name for v in shared_decode(plan)] == ["240p", "288p", "360p", "432p", "480p",
                                                     "540p", "storyboard"]
