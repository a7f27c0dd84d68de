"""Structured logs: each process writes one JSON object a line on stderr, with the request id
and the asset id bound, its own lines and its libraries' alike. Each case runs in its own
interpreter, since `logs.configure` takes over the root logger of the process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from mediaplane.core import logs

ASSET = "mda_01arz3ndektsv4rrffq69g5fav"


def json_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing logged"
    return [json.loads(line) for line in lines]  # a line that is not JSON fails here


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, **(env or {})})


def test_the_asset_id_is_found_in_paths_keys_and_object_names() -> None:
    assert logs.asset_id_in(f"/api/v1/media/{ASSET}/stream/hls/master.m3u8") == ASSET
    assert logs.asset_id_in(f"t-abc/{ASSET.replace('_', '-')}-240p") == ASSET
    assert logs.asset_id_in(f"media/t-abc/{ASSET}/source?X-Amz-Signature=00") == ASSET
    assert logs.asset_id_in("/api/v1/media?limit=5") is None
    assert logs.asset_id_in("mda_short") is None


def test_api_requests_log_their_request_id_and_asset_id_on_every_line() -> None:
    """The API's request guard binds both for the whole request: the line our route writes,
    a library's line and the access line all carry them; a request about no asset none."""
    done = run_python(f"""
        import asyncio, logging
        import httpx
        from mediaplane.core import logs
        from mediaplane.api.errorhandlers import RequestGuard

        async def route(scope, receive, send):
            logging.getLogger("mediaplane.api.media").info("looking up")
            logging.getLogger("botocore").warning("a library speaks")
            await send({{"type": "http.response.start", "status": 404, "headers": []}})
            await send({{"type": "http.response.body", "body": b"{{}}"}})

        async def main():
            app = RequestGuard(route, max_body_bytes=1024)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://api") as client:
                await client.get("/api/v1/media/{ASSET}", headers={{"x-request-id": "req-0001"}})
                await client.get("/api/v1/media")

        logs.configure("api", "INFO")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # the test's client
        asyncio.run(main())
        """)
    assert done.returncode == 0, done.stderr
    entries = json_lines(done.stderr)
    about = [e for e in entries if e.get("path", "").endswith(ASSET)
             or e.get("request_id") == "req-0001"]
    assert [e["event"] for e in about] == ["looking up", "a library speaks", "request"]
    assert all(e["request_id"] == "req-0001" and e["asset_id"] == ASSET for e in about)
    assert all(e["service"] == "api" and e["timestamp"] for e in entries)
    access = about[-1]
    assert (access["method"], access["status"]) == ("GET", 404)
    other = [e for e in entries if e not in about]
    assert [e["event"] for e in other] == ["looking up", "a library speaks", "request"]
    assert all("asset_id" not in e and e["request_id"] != "req-0001" for e in other)


def test_a_worker_binds_the_asset_of_its_task_to_every_line(tmp_path: Path) -> None:
    """The real worker command, with a task it refuses: its lines, the error and the CPU
    line after it name the asset (from the keys in the task; the task names none itself)."""
    task = {"type": "probe",
            "input_url": f"http://127.0.0.1:9/mediaplane/t-abc/{ASSET}/source"}
    worker = Path(sys.executable).with_name("mediaplane-worker")
    done = subprocess.run([str(worker)], capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ, "MEDIAPLANE_TASK": json.dumps(task),
                                            "MEDIAPLANE_RESULT_PATH": str(tmp_path / "result")})
    assert done.returncode != 0
    entries = json_lines(done.stderr)
    assert {e["asset_id"] for e in entries} == {ASSET}
    assert {(e["service"], e["task"]) for e in entries} == {("worker", "probe")}
    # The error, then the pod's CPU (`main.log_cpu`), which is logged on every way out.
    error, cpu = entries[-2:]
    assert error["level"] == "error"
    assert "expected" in error["event"]
    assert cpu["event"].startswith("cpu: worker ")


def test_an_exception_stays_on_its_one_line() -> None:
    done = run_python("""
        import logging
        from mediaplane.core import logs
        logs.configure("operator")
        with logs.bound(asset_id="mda_01arz3ndektsv4rrffq69g5fav", tenant="t-abc"):
            try:
                raise ValueError("boom")
            except ValueError:
                logging.getLogger("kopf.objects").exception("handler failed")
        logging.getLogger("kopf").debug("below the level: not written")
        """)
    assert done.returncode == 0, done.stderr
    (entry,) = json_lines(done.stderr)
    assert entry["event"] == "handler failed"
    assert (entry["asset_id"], entry["tenant"]) == (ASSET, "t-abc")
    assert "ValueError: boom" in entry["exception"]


def test_kopf_lines_keep_the_object_and_drop_kopfs_own_settings() -> None:
    """kopf logs "Handler ... succeeded" for every object it handles, with its whole
    settings object as an extra: at start-up over thousands of assets that was 2.5 KB of
    repr a line. The line keeps what says which object it is about."""
    done = run_python(f"""
        import logging
        from mediaplane.core import logs
        logs.configure("operator")
        logging.getLogger("kopf.objects").info(
            "Handler 'asset_seen' succeeded.",
            extra={{"settings": object(), "k8s_skip": True,
                   "k8s_ref": {{"kind": "MediaAsset", "name": "{ASSET.replace('_', '-')}"}}}})
    """)
    (line,) = json_lines(done.stderr)
    assert line["event"] == "Handler 'asset_seen' succeeded."
    assert line["asset_id"] == ASSET
    assert line["k8s_ref"]["kind"] == "MediaAsset"
    assert "settings" not in line
    assert "k8s_skip" not in line


def test_the_workers_lines_are_the_services_lines_without_structlog() -> None:
    """The worker writes its lines with the standard library alone (its start-up is on the
    path to playable); a reader of the logs sees the same fields either way."""
    code = """
        import logging, sys
        from mediaplane.core import logs
        logs.{configure}("worker")
        logs.bind(asset_id="{asset}", task="video", variant=None)
        logging.getLogger("mediaplane.worker.transcode").info("ffmpeg wrote %s", "240p")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("mediaplane.worker").exception("unexpected failure")
        print(sorted(m for m in ("structlog", "rich") if m in sys.modules))
        """
    lines = {}
    for configure in ("configure", "configure_plain"):
        done = run_python(code.format(configure=configure, asset=ASSET))
        assert done.returncode == 0, done.stderr
        lines[configure] = (json_lines(done.stderr), done.stdout.strip())
    (structured, _), (plain, loaded) = lines["configure"], lines["configure_plain"]
    assert loaded == "[]"
    assert len(plain) == len(structured) == 2
    for ours, theirs in zip(plain, structured, strict=True):
        # The same fields and values; only the time differs, written the same way.
        assert {k: v for k, v in ours.items() if k != "timestamp"} == {
            k: v for k, v in theirs.items() if k != "timestamp"}
        for stamp in (ours["timestamp"], theirs["timestamp"]):  # isoformat drops .000000
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", stamp)
    assert plain[0] == {"event": "ffmpeg wrote 240p", "level": "info",
                        "logger": "mediaplane.worker.transcode", "service": "worker",
                        "asset_id": ASSET, "task": "video", "timestamp": plain[0]["timestamp"]}
    assert plain[1]["level"] == "error"
    assert "ValueError: boom" in plain[1]["exception"]
