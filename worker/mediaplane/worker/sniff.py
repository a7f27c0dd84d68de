"""What the bytes really are, whatever the uploader declared.

Types are compared as container families, not mime strings: browsers and phones label the
same ISO BMFF file video/mp4, video/quicktime or audio/x-m4a, and WebM is Matroska. The
family also names the ffprobe demuxers that may read it, so a file that sniffs as PNG but
demuxes as something else is caught too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from mediaplane.core import mimes
from mediaplane.core.tasks import MediaKind

if TYPE_CHECKING:
    from pathlib import Path

HEAD_BYTES = 64 * 1024


class Family(StrEnum):
    ISOBMFF = "isobmff"  # mp4, mov, m4a, 3gp
    HEIF = "heif"  # ISO BMFF stills (HEIC, AVIF): recognised, not supported
    MATROSKA = "matroska"  # mkv, webm
    AVI = "avi"
    MPEGTS = "mpegts"
    MP3 = "mp3"
    AAC = "aac"  # raw ADTS
    WAV = "wav"
    FLAC = "flac"
    OGG = "ogg"
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"
    GIF = "gif"
    BMP = "bmp"
    TIFF = "tiff"


# ffprobe's format_name for each family (the probe insists the demuxer agrees with the sniff).
DEMUXED_AS: dict[Family, frozenset[str]] = {
    Family.ISOBMFF: frozenset({"mov,mp4,m4a,3gp,3g2,mj2"}),
    Family.MATROSKA: frozenset({"matroska,webm"}),
    Family.AVI: frozenset({"avi"}),
    Family.MPEGTS: frozenset({"mpegts"}),
    Family.MP3: frozenset({"mp3"}),
    Family.AAC: frozenset({"aac"}),
    Family.WAV: frozenset({"wav"}),
    Family.FLAC: frozenset({"flac"}),
    Family.OGG: frozenset({"ogg"}),
    Family.PNG: frozenset({"png_pipe"}),
    Family.JPEG: frozenset({"jpeg_pipe"}),
    Family.WEBP: frozenset({"webp_pipe"}),
    Family.GIF: frozenset({"gif", "gif_pipe"}),
    Family.BMP: frozenset({"bmp_pipe"}),
    Family.TIFF: frozenset({"tiff_pipe"}),
}

# Declared mime -> families it may be, per kind (the table is shared with the API).
_ACCEPTED: dict[MediaKind, dict[str, frozenset[Family]]] = {
    kind: {mime: frozenset(Family(f) for f in families) for mime, families in table.items()}
    for kind, table in mimes.ACCEPTED.items()
}

# puremagic answers with file extensions; these are the ones we map.
_BY_EXTENSION: dict[str, Family] = {
    **dict.fromkeys((".mp4", ".m4v", ".m4a", ".m4b", ".f4v", ".f4a", ".mov", ".qt", ".qtvr",
                     ".3gp", ".3gpp", ".3g2", ".3ga", ".mj2"), Family.ISOBMFF),
    **dict.fromkeys((".heic", ".heif", ".avif"), Family.HEIF),
    **dict.fromkeys((".mkv", ".mka", ".mks", ".webm"), Family.MATROSKA),
    ".avi": Family.AVI,
    **dict.fromkeys((".ts", ".mts", ".m2ts"), Family.MPEGTS),
    **dict.fromkeys((".mp3", ".mpga"), Family.MP3),
    ".aac": Family.AAC,
    ".wav": Family.WAV,
    ".flac": Family.FLAC,
    **dict.fromkeys((".ogg", ".oga", ".ogv", ".ogx", ".opus"), Family.OGG),
    ".png": Family.PNG,
    **dict.fromkeys((".jpg", ".jpeg", ".jpe", ".jfif"), Family.JPEG),
    ".webp": Family.WEBP,
    ".gif": Family.GIF,
    **dict.fromkeys((".bmp", ".dib"), Family.BMP),
    **dict.fromkeys((".tif", ".tiff"), Family.TIFF),
}

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1",
                          b"msf1", b"avif", b"avis"})
_TS_PACKET = 188


normalise_mime = mimes.normalise_mime


def accepted_families(kind: MediaKind, declared_mime: str) -> frozenset[Family]:
    """Empty when the declared mime is not one we take for that kind."""
    return _ACCEPTED[kind].get(normalise_mime(declared_mime), frozenset())


def _structural(head: bytes) -> Family | None:
    """Checks puremagic gets wrong or misses: ftyp brands, MPEG-TS sync bytes."""
    if head[4:8] == b"ftyp":
        return Family.HEIF if head[8:12] in _HEIF_BRANDS else Family.ISOBMFF
    if len(head) > 2 * _TS_PACKET and all(head[i] == 0x47 for i in range(0, 3 * _TS_PACKET,
                                                                          _TS_PACKET)):
        return Family.MPEGTS
    return None


def _puremagic(head: bytes) -> Family | None:
    import puremagic  # deferred: only the probe sniffs

    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        return None
    best: tuple[float, Family] | None = None
    for match in matches:  # puremagic orders by confidence; keep the first best known one
        family = _BY_EXTENSION.get(match.extension.lower())
        if family is not None and (best is None or match.confidence > best[0]):
            best = (match.confidence, family)
    return best[1] if best else None


def sniff(head: bytes) -> Family | None:
    return _structural(head) or _puremagic(head)


def id3_length(head: bytes) -> int:
    """Size of a leading ID3v2 tag: it may precede MP3, but also AAC or FLAC."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def sniff_file(path: Path) -> Family | None:
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
        skip = id3_length(head)
        if not skip:
            return sniff(head)
        handle.seek(skip)
        after = handle.read(HEAD_BYTES)
    # Whatever follows the tag decides; an ID3 tag before unrecognised frames is MP3.
    family = sniff(after)
    return family if family in (Family.AAC, Family.FLAC) else Family.MP3


def canonical_mime(kind: MediaKind, family: Family, head: bytes = b"") -> str:
    """The mime the asset will be served as, derived from the bytes, not the declaration."""
    if family is Family.ISOBMFF:
        if kind is MediaKind.AUDIO:
            return "audio/mp4"
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand.startswith(b"3g2"):
            return "video/3gpp2"
        if brand.startswith(b"3gp"):
            return "video/3gpp"
        return "video/mp4"
    if family is Family.MATROSKA:
        webm = b"webm" in head[:64]
        if kind is MediaKind.AUDIO:
            return "audio/webm" if webm else "audio/x-matroska"
        return "video/webm" if webm else "video/x-matroska"
    fixed = {
        Family.AVI: "video/x-msvideo", Family.MPEGTS: "video/mp2t", Family.MP3: "audio/mpeg",
        Family.AAC: "audio/aac", Family.WAV: "audio/wav", Family.FLAC: "audio/flac",
        Family.OGG: "audio/ogg", Family.PNG: "image/png", Family.JPEG: "image/jpeg",
        Family.WEBP: "image/webp", Family.GIF: "image/gif", Family.BMP: "image/bmp",
        Family.TIFF: "image/tiff", Family.HEIF: "image/heif",
    }
    return fixed[family]
