"""Local stand-ins for external AI services, for tests only.

No text-to-image model installs from the package registries this project uses, and a
hosted moderation service is out of reach, so the tests start these small HTTP servers on
127.0.0.1. Each implements the wire protocol of the real service as mediaplane uses it:

- `ImageService`: an OpenAI-compatible `POST /v1/images/generations` (base64 answers) and an
  AUTOMATIC1111/Forge `POST /sdapi/v1/txt2img`, drawing a real picture of the asked size;
- `ModerationService`: an OpenAI-compatible `POST /v1/moderations`.

They stand in for the external services; they are not part of mediaplane. Behaviours a test
needs (a content-policy refusal, a service that is down for a while, one that never answers
in time) are switched per instance, and every request is recorded.
"""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


def png(width: int, height: int, seed: int = 0) -> bytes:
    """A real RGB PNG: a gradient, so resizing it shows."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            row += bytes(((x * 255 // max(1, width - 1) + seed) % 256,
                          (y * 255 // max(1, height - 1)) % 256, (seed * 7) % 256))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + chunk(b"IEND", b""))


def jpeg(width: int, height: int) -> bytes:
    """A real JPEG, from ffmpeg (some services answer JPEG)."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         f"testsrc2=size={width}x{height}", "-frames:v", "1", "-f", "image2pipe",
         "-c:v", "mjpeg", "-"], capture_output=True, check=True, timeout=60)
    return done.stdout


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _Server:
    requests: list[Recorded] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any],
                                                              dict[str, str]]:
        raise NotImplementedError

    def start(self) -> Self:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                outer.requests.append(Recorded(self.path, dict(self.headers), body))
                status, answer, headers = outer.answer(self.path, body)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class ImageService(_Server):
    """Modes: "ok"; "refuse" (400, a content policy); "down" (503 for `failures` calls,
    then ok); "slow" (answers after `delay` seconds); "garbage" (200 without a picture)."""

    mode: str = "ok"
    failures: int = 0
    delay: float = 0.0
    picture: str = "png"  # or "jpeg"
    refusal: str = "Your request was rejected by the safety system (stand-in)."

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any],
                                                              dict[str, str]]:
        if self.mode == "slow":
            time.sleep(self.delay)
        if self.mode == "refuse":
            return 400, {"error": {"message": self.refusal, "type": "invalid_request_error",
                                   "code": "content_policy_violation"}}, {}
        if self.mode == "down" and self.failures > 0:
            self.failures -= 1
            return 503, {"error": {"message": "overloaded (stand-in)"}}, {"Retry-After": "1"}
        if path == "/v1/images/generations":
            width, height = (int(v) for v in str(body.get("size", "256x256")).split("x"))
        elif path == "/sdapi/v1/txt2img":
            width, height = int(body.get("width", 512)), int(body.get("height", 512))
        else:
            return 404, {"detail": "Not Found"}, {}
        if self.mode == "garbage":
            return 200, {"data": [], "images": []}, {}
        data = png(width, height, seed=len(self.requests)) if self.picture == "png" \
            else jpeg(width, height)
        encoded = base64.b64encode(data).decode()
        if path == "/v1/images/generations":
            return 200, {"created": int(time.time()), "data": [{"b64_json": encoded}]}, {}
        return 200, {"images": [encoded], "parameters": body, "info": "{}"}, {}


@dataclass
class ModerationService(_Server):
    """Flags any input containing one of `flag` (lower case), in the category given."""

    flag: dict[str, str] = field(default_factory=dict)
    down: bool = False

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any],
                                                              dict[str, str]]:
        if self.down:
            return 500, {"error": {"message": "down (stand-in)"}}, {}
        text = str(body.get("input", "")).lower()
        hits = {category for word, category in self.flag.items() if word in text}
        return 200, {"id": "modr-standin", "model": "stand-in", "results": [{
            "flagged": bool(hits), "categories": dict.fromkeys(hits, True),
            "category_scores": dict.fromkeys(hits, 0.99)}]}, {}
