"""Structural checks of the bytes themselves, before any demuxer or decoder reads them.

Each answers "what is wrong with this file" (a quarantine reason and message) or None, from
the bytes alone, cheaply (a walk of top-level boxes, the head and the tail): truncated
containers, files that are two formats at once (polyglots), bytes hidden after an image's
end, and the EICAR test signature. Pure functions over a path; unit tests feed them files.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediaplane.worker.sniff import Family

if TYPE_CHECKING:
    from pathlib import Path

TAIL_BYTES = 64 * 1024 + 22  # a ZIP's end-of-central-directory record sits in here
HEAD_SCAN = 1024  # PDF readers look for their header this far into a file
# The EICAR anti-virus test file's signature (its standard, harmless text): the one
# signature checked here; real malware scanning is a scanner's job (see the README).
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
EICAR_SCAN = 16 * 1024 * 1024  # bytes of a file searched for it
ZIP_EOCD = b"PK\x05\x06"
PNG_IEND = b"IEND\xaeB`\x82"
JPEG_EOI = b"\xff\xd9"
GIF_TRAILER = b"\x3b"
# Bytes a writer may leave after an image's end (padding) before it counts as hidden data.
TRAILING_SLACK = 16


@dataclass(frozen=True)
class Finding:
    reason: str
    message: str


def _head_tail(path: Path) -> tuple[bytes, bytes, int]:
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(HEAD_SCAN)
        handle.seek(max(0, size - TAIL_BYTES))
        tail = handle.read()
    return head, tail, size


def polyglot(path: Path, family: Family) -> Finding | None:
    """A file that another program would read as a PDF or a ZIP archive."""
    head, tail, _ = _head_tail(path)
    if b"%PDF-" in head:
        return Finding("Polyglot", f"a {family} file that is also a PDF document")
    if ZIP_EOCD in tail:
        return Finding("Polyglot", f"a {family} file that is also a ZIP archive")
    return None


def eicar(path: Path) -> Finding | None:
    with path.open("rb") as handle:
        data = handle.read(EICAR_SCAN)
    if EICAR in data:
        return Finding("MalwareSignature", "the file holds the EICAR anti-virus test "
                       "signature")
    return None


def isobmff_truncated(path: Path) -> Finding | None:
    """Top-level boxes must tile the file exactly: a box reaching past the end means the
    upload was cut (a decoder would fail, or stop early, in every rendition)."""
    size = path.stat().st_size
    offset = 0
    with path.open("rb") as handle:
        while offset < size:
            handle.seek(offset)
            header = handle.read(16)
            if len(header) < 8:
                return Finding("Truncated", f"{size - offset} stray bytes after the last box")
            length, kind = struct.unpack(">I4s", header[:8])
            if length == 1:
                if len(header) < 16:
                    return Finding("Truncated", "a box header is cut")
                length = struct.unpack(">Q", header[8:16])[0]
            elif length == 0:
                length = size - offset  # "to the end of the file"
            if length < 8:
                return Finding("Unreadable", f"box {kind!r} at {offset} has size {length}")
            if offset + length > size:
                return Finding("Truncated", f"box {kind.decode('latin-1')!r} at {offset} "
                               f"needs {length} bytes, the file has {size - offset} left")
            offset += length
    return None


def image_trailer(path: Path, family: Family) -> Finding | None:
    """Bytes after an image's end marker are data no viewer shows: refused, so nothing can
    ride inside an image (and an image that lacks its end is cut)."""
    _, tail, _ = _head_tail(path)
    marker = {Family.PNG: PNG_IEND, Family.JPEG: JPEG_EOI}.get(family)
    if marker is None:
        return None
    end = tail.rfind(marker)
    if end < 0:
        return Finding("Truncated", f"the {family} image has no end marker")
    extra = len(tail) - (end + len(marker))
    if extra > TRAILING_SLACK:
        return Finding("TrailingData", f"{extra} bytes follow the end of the {family} image")
    return None


def webp_animated(path: Path) -> Finding | None:
    """An animated WebP (VP8X with the animation flag, or an ANIM chunk): images are
    stills, and GIF is the one animation format taken (with a frame limit)."""
    head, _, _ = _head_tail(path)
    flags = head[20] if head[12:16] == b"VP8X" and len(head) > 20 else 0
    if flags & 0x02 or b"ANIM" in head[:64]:
        return Finding("AnimatedImage", "an animated WebP; WebP images must be stills")
    return None


def inspect_bytes(path: Path, family: Family) -> Finding | None:
    """The first finding of every structural check that applies to `family`."""
    checks = [eicar(path), polyglot(path, family)]
    if family is Family.WEBP:
        checks.append(webp_animated(path))
    if family is Family.ISOBMFF:
        checks.append(isobmff_truncated(path))
    checks.append(image_trailer(path, family))
    return next((finding for finding in checks if finding is not None), None)
