"""The declared mime types mediaplane takes, per kind, and the container family each means.

One table serves both ends: the API refuses an upload whose mime is not here
(`validation.mime.unsupported`), and the probe checks the bytes against the families.
Families are names of the worker's sniffing families (`mediaplane.worker.sniff.Family`).
"""

from __future__ import annotations

from mediaplane.core.tasks import MediaKind


def _each(mimes: tuple[str, ...], *families: str) -> dict[str, frozenset[str]]:
    return dict.fromkeys(mimes, frozenset(families))


# Declared mime (lower case, parameters dropped) -> families it may be, per kind.
ACCEPTED: dict[MediaKind, dict[str, frozenset[str]]] = {
    MediaKind.VIDEO: {
        **_each(("video/mp4", "video/quicktime", "video/x-m4v", "video/3gpp", "video/3gpp2"),
                "isobmff"),
        **_each(("video/webm", "video/x-matroska", "video/matroska"), "matroska"),
        **_each(("video/x-msvideo", "video/avi", "video/msvideo"), "avi"),
        "video/mp2t": frozenset({"mpegts"}),
    },
    MediaKind.AUDIO: {
        **_each(("audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg-3"), "mp3"),
        **_each(("audio/mp4", "audio/x-m4a", "audio/m4a"), "isobmff"),
        # "audio/aac" is what many clients call an .m4a too.
        **_each(("audio/aac", "audio/x-aac", "audio/aacp"), "aac", "isobmff"),
        **_each(("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"), "wav"),
        **_each(("audio/flac", "audio/x-flac"), "flac"),
        **_each(("audio/ogg", "audio/opus", "audio/vorbis", "application/ogg"), "ogg"),
        **_each(("audio/webm", "audio/x-matroska"), "matroska"),
    },
    MediaKind.IMAGE: {
        "image/png": frozenset({"png"}),
        **_each(("image/jpeg", "image/jpg", "image/pjpeg"), "jpeg"),
        "image/webp": frozenset({"webp"}),
        "image/gif": frozenset({"gif"}),
        **_each(("image/bmp", "image/x-ms-bmp", "image/x-bmp"), "bmp"),
        "image/tiff": frozenset({"tiff"}),
    },
}


def normalise_mime(mime: str) -> str:
    return mime.split(";", 1)[0].strip().lower()


def is_accepted(kind: MediaKind, mime: str) -> bool:
    return normalise_mime(mime) in ACCEPTED[kind]


def infer_kind(mime: str) -> MediaKind | None:
    """The kind a declared mime belongs to (each accepted mime belongs to exactly one)."""
    plain = normalise_mime(mime)
    for kind, table in ACCEPTED.items():
        if plain in table:
            return kind
    return None
