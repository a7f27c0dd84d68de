"""Pure parts of the API: manifest rewriting, signing, captions, cursors, errors, OpenAPI."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import jwt
import m3u8
import pytest
from pydantic import SecretStr

from mediaplane.api import streaming
from mediaplane.api.app import create_app
from mediaplane.api.auth import Principal
from mediaplane.api.captions import to_webvtt
from mediaplane.api.errors import CODES, ApiError
from mediaplane.api.pagination import check_page_size, decode_cursor, encode_cursor
from mediaplane.api.routers.uploads import dedup_asset_id
from mediaplane.api.settings import ApiSettings
from mediaplane.api.signing import StreamSigner
from mediaplane.core import names
from mediaplane.core.manifests import dash
from mediaplane.core.resources import ManualCaption, MediaAsset, VariantStatus
from mediaplane.core.states import VariantState
from mediaplane.core.tasks import MediaKind, VariantType
from tests.support.resources import playable_status

KEY = "k" * 40
ASSET_ID = "mda_00000000000000000000000000"
PREFIX = f"tenants/t/assets/{ASSET_ID}/"
MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.m4s"
#EXTINF:2.000000,
seg-00001.m4s
#EXTINF:1.500000,
seg-00002.m4s
#EXT-X-ENDLIST
"""
MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT3.5S"
     minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4">
      <Representation id="240p" bandwidth="400000" codecs="avc1.64000d" width="426" height="240">
        <BaseURL>variants/240p/</BaseURL>
        <SegmentTemplate timescale="12800" initialization="init.m4s"
                         media="seg-$Number%05d$.m4s" startNumber="1">
          <SegmentTimeline><S t="0" d="25600" r="0"/><S d="19200"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"""


def presign(key: str) -> str:
    return f"https://s3.test/{key}?X-Amz-Signature=abc&X-Amz-Expires=60"


def playable_asset() -> MediaAsset:
    asset = MediaAsset.new("t", ASSET_ID, kind=MediaKind.VIDEO, mime="video/mp4",
                           sha256="a" * 64, size_bytes=10)
    asset.spec.captions = [ManualCaption(language="en-US", key=PREFIX + "captions/en-US.vtt",
                                         label="English"),
                           ManualCaption(language="fr", key=PREFIX + "captions/fr.vtt",
                                         approved=False)]
    asset.status = playable_status("t", ASSET_ID, VariantStatus(
        name="360p", type=VariantType.VIDEO, state=VariantState.RUNNING))
    return asset


def test_hls_master_is_rendered_from_status_with_signed_links_and_approved_subtitles() -> None:
    links = streaming.Links("https://api.test", ASSET_ID)
    body = streaming.with_token(streaming.hls_master(playable_asset(), links), "TKN")
    parsed = m3u8.loads(body)
    assert [p.uri for p in parsed.playlists] == [
        f"https://api.test/api/v1/media/{ASSET_ID}/stream/hls/240p/index.m3u8?token=TKN"]
    assert parsed.playlists[0].stream_info.subtitles == "subs"
    assert parsed.playlists[0].stream_info.bandwidth == 500_000
    by_type = {m.type: m for m in parsed.media}
    assert by_type["AUDIO"].uri.endswith("/stream/hls/audio/index.m3u8?token=TKN")
    subtitles = [m for m in parsed.media if m.type == "SUBTITLES"]
    assert [(m.language, m.name) for m in subtitles] == [("en-US", "English")], \
        "a track awaiting review is not served"
    assert subtitles[0].uri.endswith("/stream/hls/captions-en-US/index.m3u8?token=TKN")


def test_hls_media_presigns_init_and_segments() -> None:
    body = streaming.hls_media(MEDIA, PREFIX + "variants/240p/", presign)
    parsed = m3u8.loads(body)
    assert parsed.segment_map[0].uri == presign(PREFIX + "variants/240p/init.m4s")
    assert [s.uri for s in parsed.segments] == [
        presign(PREFIX + "variants/240p/seg-00001.m4s"),
        presign(PREFIX + "variants/240p/seg-00002.m4s")]
    assert parsed.is_endlist


def test_dash_template_becomes_a_list_of_presigned_segments() -> None:
    track = ManualCaption(language="fr", key=PREFIX + "captions/fr.vtt")
    body = streaming.dash_mpd(MPD, PREFIX, presign, [(track, presign(track.key))])
    root = ET.fromstring(body)  # noqa: S314 (a test's own string)
    ns = {"d": dash.DASH_NS}
    segment_list = root.find(".//d:Representation[@id='240p']/d:SegmentList", ns)
    assert segment_list is not None
    urls = [s.get("media") for s in segment_list.findall("d:SegmentURL", ns)]
    assert urls == [presign(PREFIX + "variants/240p/seg-00001.m4s"),
                    presign(PREFIX + "variants/240p/seg-00002.m4s")]
    text_set = root.find(".//d:AdaptationSet[@contentType='text']", ns)
    assert text_set is not None
    assert (text_set.get("lang"), text_set.get("mimeType")) == ("fr", "text/vtt")


def test_stream_tokens_bind_asset_and_expiry() -> None:
    signer = StreamSigner(KEY, 600)
    alice = Principal("t1", "alice")
    asset = "mda_" + "1" * 26
    grant = signer.sign(alice, asset)
    token = signer.token(grant)
    assert signer.verify(token, asset) == grant
    claims = {"typ": "mediaplane.stream", "sub": "alice", "ten": "t1", "ast": asset,
              "scp": "all", "exp": grant.expires_at}
    assert token == jwt.encode(claims, KEY, algorithm="HS256"), "pyjwt's own token"
    with pytest.raises(ApiError) as other_asset:
        signer.verify(token, "mda_" + "2" * 26)
    assert other_asset.value.code == "stream.signature.invalid"
    with pytest.raises(ApiError) as tampered:
        signer.verify(token[:-2] + ("xy" if not token.endswith("xy") else "zz"), asset)
    assert tampered.value.code == "stream.signature.invalid"
    old = signer.token(signer.sign(alice, asset, now=time.time() - 601))
    with pytest.raises(ApiError) as expired:
        signer.verify(old, asset)
    assert expired.value.code == "stream.signature.expired"
    with pytest.raises(ApiError):
        StreamSigner("z" * 40, 600).verify(token, asset)


def test_srt_becomes_webvtt_and_garbage_is_refused() -> None:
    vtt, detected = to_webvtt("1\n00:00:01,000 --> 00:00:02,500\nHi\n")
    assert detected == "srt"
    assert vtt == "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHi\n"
    for bad in ("", "WEBVTT\n\nno cue here\n", "1\n00:00:09,000 --> 00:00:01,000\nx\n",
                "<html>nope</html>"):
        with pytest.raises(ApiError) as error:
            to_webvtt(bad)
        assert error.value.code == "validation.caption"


def test_cursors_are_bound_to_their_filters() -> None:
    cursor = encode_cursor("k8s-continue-token", "spec.kind=video")
    assert decode_cursor(cursor, "spec.kind=video") == "k8s-continue-token"
    for selector, value in (("spec.kind=image", cursor), ("", "%%%"), ("", "e30")):
        with pytest.raises(ApiError) as error:
            decode_cursor(value, selector)
        assert error.value.code == "validation.cursor"
    assert check_page_size(200) == 200
    for size in (0, 201):
        with pytest.raises(ApiError):
            check_page_size(size)


def test_dedup_ids_are_per_tenant_and_valid_names() -> None:
    sha = "a" * 64
    first = dedup_asset_id("t1", sha)
    assert first == dedup_asset_id("t1", sha)
    assert first != dedup_asset_id("t2", sha)
    assert names.ASSET_ID_PATTERN.match(first)


def test_openapi_documents_every_route_and_its_error_codes() -> None:
    app = create_app(ApiSettings(jwt_secret=SecretStr("s" * 32), stream_signing_key=SecretStr(KEY)))
    document = app.openapi()
    paths = document["paths"]
    assert "/api/v1/media/upload-url" in paths
    assert "/api/v1/media/{asset_id}/stream/hls/{variant}/index.m3u8" in paths
    upload = paths["/api/v1/media/upload-url"]["post"]["responses"]
    assert "validation.mime.unsupported" in upload["422"]["description"]
    assert "rate.limited" in upload["429"]["description"]
    stream = paths["/api/v1/media/{asset_id}/stream/hls/{variant}/index.m3u8"]["get"]
    assert "media.quarantined" in stream["responses"]["451"]["description"]
    assert "media.transcoding" in stream["responses"]["409"]["description"]
    for path, item in paths.items():
        if path.startswith("/api/"):
            for operation in item.values():
                assert any(code.startswith("4") for code in operation["responses"]), path
    for code in ("validation.mime.unsupported", "validation.size.exceeds_limit",
                 "media.quarantined", "media.transcoding", "rate.limited"):
        assert code in CODES


def test_settings_refuse_weak_or_missing_keys() -> None:
    with pytest.raises(ValueError, match="JWT_SECRET"):
        ApiSettings(stream_signing_key=SecretStr(KEY))
    with pytest.raises(ValueError, match="STREAM_SIGNING_KEY"):
        ApiSettings(jwt_secret=SecretStr("s"), stream_signing_key=SecretStr("short"))
    with pytest.raises(ValueError, match="JWKS"):
        ApiSettings(jwt_algorithms="RS256", stream_signing_key=SecretStr(KEY))


def test_caption_markup_keeps_webvtt_tags_and_drops_the_rest() -> None:
    cue = "Deux <i>mots</i><script>x()</script>\n"
    for source in (f"1\n00:00:01,000 --> 00:00:02,500\n{cue}",
                   f"WEBVTT\n\n00:00:01.000 --> 00:00:02.500\n{cue}"):
        vtt, _ = to_webvtt(source)
        assert "Deux <i>mots</i>\n" in vtt
        assert "script" not in vtt


def test_the_listed_assets_are_kept_out_of_full_garbage_collections() -> None:
    """A full collection walks every tracked object: with 10,000 cached assets that is half
    a second in which no request is answered. Once listed, the cache leaves the
    collector's generations; an asset the watch later replaces is still freed."""
    import gc
    import weakref

    from mediaplane.api.informer import keep_out_of_full_collections

    cached = [MediaAsset.new("t", names.new_asset_id(), kind=MediaKind.VIDEO,
                             mime="video/mp4", sha256="0" * 64, size_bytes=1)
              for _ in range(50)]
    try:
        keep_out_of_full_collections()
        tracked = {id(obj) for obj in gc.get_objects()}
        assert not any(id(asset) in tracked for asset in cached)
        assert not any(id(asset.status) in tracked for asset in cached)
        replaced = weakref.ref(cached[0])
        cached[0] = cached[1]
        assert replaced() is None, "reference counting frees a frozen asset that is dropped"
    finally:
        gc.unfreeze()
