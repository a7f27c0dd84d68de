"""A corpus of hostile media, every file built here from ffmpeg's generators, zipfile and
raw bytes (nothing downloaded): SSRF and local-file vectors disguised as media,
decompression bombs, truncated and malformed containers, polyglots, an SVG with script,
an animation of thousands of frames, the EICAR test signature, a video with 50 streams."""

from __future__ import annotations

import io
import struct
import subprocess
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from mediaplane.worker.hostile import EICAR


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes
    mime: str
    # Quarantine reasons that are right for it; empty: refused by the API (4xx) up front.
    reasons: frozenset[str]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=180)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png(width: int, height: int, rows: int = 1, extra_chunks: bytes = b"") -> bytes:
    """A PNG whose header declares width x height; only `rows` rows of data follow."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    raw = zlib.compress(b"\x00" * (rows * (min(width, 4096) + 1)), 9)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + extra_chunks
            + _png_chunk(b"IDAT", raw) + _png_chunk(b"IEND", b""))


def _patch_sof(data: bytes, width: int, height: int) -> bytes:
    """Every baseline JPEG frame header (SOF0) made to declare width x height."""
    out = bytearray(data)
    start = 0
    while (found := out.find(b"\xff\xc0", start)) >= 0:
        out[found + 5:found + 9] = struct.pack(">HH", height, width)
        start = found + 2
    return bytes(out)


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        boxes.append((kind, data[offset:offset + size]))
        offset += size
    return boxes


def _patch_sample_entry(data: bytes, fourcc: bytes, width: int, height: int) -> bytes:
    """The container's own idea of the picture size (a mov VisualSampleEntry) as well."""
    out = bytearray(data)
    entry = out.find(fourcc) - 4
    out[entry + 32:entry + 36] = struct.pack(">HH", width, height)
    return bytes(out)


def build(directory: Path, clip: bytes, listener_port: int, canary: Path) -> list[Hostile]:
    url = f"http://127.0.0.1:{listener_port}"
    hls = (f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{url}/seg.ts\n"
           "#EXT-X-ENDLIST\n").encode()
    concat = f"ffconcat version 1.0\nfile '{url}/a.mp4'\nfile '{canary}'\n".encode()
    hls_file = (f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nfile://{canary}\n"
                "#EXT-X-ENDLIST\n").encode()
    hls_data = (b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n"
                b"data:video/mp2t;base64,R0lGODlhAQABAAAAACw=\n#EXT-X-ENDLIST\n")
    svg = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" '
           b'xmlns:xlink="http://www.w3.org/1999/xlink"><script>alert(document.cookie)'
           b'</script><image xlink:href="' + url.encode() + b'/x.png"/>'
           b'<use href="file:///etc/passwd#x"/></svg>')

    small_jpeg = directory / "small.jpg"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=1", "-frames:v", "1", str(small_jpeg))
    jpeg = small_jpeg.read_bytes()
    tiny_mov = directory / "tiny.mov"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=16x16:rate=5:duration=1", "-c:v", "mjpeg",
            "-f", "mov", str(tiny_mov))
    silent = directory / "silent.flac"  # 3 hours of silence at 1 kHz, in ~10 KB
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=1000:cl=mono", "-t", "10800", "-c:a", "flac",
            "-frame_size", "65535", str(silent))
    gap = directory / "gap.mkv"  # two frames, three hours apart
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x32:rate=1:duration=2", "-vf",
            "setpts='if(eq(N,1),10800/TB,PTS)'", "-fps_mode", "passthrough", "-c:v", "mjpeg",
            str(gap))
    gif = directory / "frames.gif"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=8x8:rate=100:duration=30", str(gif))
    webp = directory / "frames.webp"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=16x16:rate=50:duration=40", "-c:v",
            "libwebp_anim", "-loop", "0", str(webp))
    streams = directory / "streams.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x32:rate=5:duration=1", "-f", "lavfi",
            "-i", "anullsrc=r=8000:cl=mono:d=1", "-map", "0:v",
            *[a for _ in range(49) for a in ("-map", "1:a")], "-c:v", "mjpeg", "-c:a",
            "pcm_s16le", "-t", "1", str(streams))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("payload.html", "<script>alert(1)</script>")
    moov_less = b"".join(box for kind, box in _boxes(clip) if kind != b"moov")
    ftyp = _boxes(clip)[0][1]
    pdf_box = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
    pdf_mp4 = ftyp + struct.pack(">I", 8 + len(pdf_box)) + b"free" + pdf_box + clip[len(ftyp):]
    eicar_png = png(64, 64, rows=64, extra_chunks=_png_chunk(b"tEXt", b"Comment\x00" + EICAR))
    bmp = (b"BM" + struct.pack("<IHHI", 1078, 0, 0, 54)
           + struct.pack("<IiiHHIIiiII", 40, 50_000, 50_000, 1, 8, 0, 0, 2835, 2835, 0, 0)
           + b"\x00" * 1024)
    spoof = {"TypeMismatch"}
    bomb = {"DimensionsTooLarge", "Unreadable"}
    return [
        Hostile("HLS playlist declared as MP4", hls, "video/mp4", frozenset(spoof)),
        Hostile("HLS playlist declared as AVI", hls + b"#avi\n", "video/x-msvideo",
                frozenset(spoof)),
        Hostile("concat list declared as MP4", concat, "video/mp4", frozenset(spoof)),
        Hostile("concat list declared as AVI", concat + b"# avi\n", "video/avi",
                frozenset(spoof)),
        Hostile("playlist naming a file:// URL", hls_file, "audio/mpeg", frozenset(spoof)),
        Hostile("playlist naming a data: URI", hls_data, "video/mp4", frozenset(spoof)),
        Hostile("PNG declaring 100000x100000", png(100_000, 100_000), "image/png",
                frozenset(bomb)),
        Hostile("JPEG declaring 65000x65000", _patch_sof(jpeg, 65_000, 65_000),
                "image/jpeg", frozenset(bomb)),
        Hostile("video declaring 16384x16384", _patch_sample_entry(
            _patch_sof(tiny_mov.read_bytes(), 16_384, 16_384), b"jpeg", 16_384, 16_384),
                "video/quicktime", frozenset(bomb)),
        Hostile("BMP declaring 50000x50000", bmp, "image/bmp", frozenset(bomb)),
        Hostile("3 hours of silent audio in ~10 KB (FLAC)", silent.read_bytes(),
                "audio/flac", frozenset({"DecompressionBomb"})),
        Hostile("2 KB video declaring 3 hours", gap.read_bytes(), "video/x-matroska",
                frozenset({"DecompressionBomb"})),
        Hostile("MP4 cut in half", clip[:len(clip) // 2], "video/mp4",
                frozenset({"Truncated"})),
        Hostile("MP4 without its moov atom", moov_less, "video/mp4",
                frozenset({"Unreadable"})),
        Hostile("PNG cut in half", png(64, 64, rows=64)[:60], "image/png",
                frozenset({"Truncated", "Unreadable"})),
        Hostile("JPEG+ZIP polyglot", jpeg + archive.getvalue(), "image/jpeg",
                frozenset({"Polyglot"})),
        Hostile("PDF+MP4 polyglot", pdf_mp4, "video/mp4", frozenset({"Polyglot"})),
        Hostile("JPEG with data after its end", jpeg + b"\x01" * 4096, "image/jpeg",
                frozenset({"TrailingData"})),
        Hostile("SVG with script declared as PNG", svg, "image/png", frozenset(spoof)),
        Hostile("GIF of 3000 frames", gif.read_bytes(), "image/gif",
                frozenset({"TooManyFrames"})),
        Hostile("animated WebP of 2000 frames", webp.read_bytes(), "image/webp",
                frozenset({"AnimatedImage"})),
        Hostile("EICAR inside a PNG", eicar_png, "image/png",
                frozenset({"MalwareSignature"})),
        Hostile("EICAR declared as a JPEG", EICAR, "image/jpeg",
                frozenset({"MalwareSignature", "TypeMismatch"})),
        Hostile("video with 50 streams", streams.read_bytes(), "video/x-matroska",
                frozenset({"TooManyStreams"})),
        Hostile("zero-byte file", b"", "video/mp4", frozenset()),
        Hostile("SVG declared as SVG", svg, "image/svg+xml", frozenset()),
    ]
