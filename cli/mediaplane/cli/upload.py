"""`mediaplane upload`: hash, ask for a grant, POST the form to storage with a progress bar,
finalize; several files at once. And the live view of assets getting ready (`--wait`).

The bytes go from this machine straight to object storage through the grant's presigned
POST (the policy fields first, the file last, as a browser form does); the API only signs
and, at finalize, makes the asset from what storage holds.
"""

from __future__ import annotations

import hashlib
import mimetypes
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from mediaplane.cli.client import (
    API_PREFIX,
    EXIT_API_ERROR,
    EXIT_TIMEOUT,
    EXIT_UNREACHABLE,
    Api,
    CliError,
)

HASH_BLOCK = 1 << 20
POLL_SECONDS = 1.0
STORAGE_TIMEOUT = httpx.Timeout(60.0, write=300.0)
DONE_STATES = ("succeeded", "failed")
SETTLED = ("failed", "quarantined")


class Until:
    PLAYABLE = "playable"
    COMPLETE = "complete"


@dataclass
class Outcome:
    """One file's upload as the user sees it."""

    path: Path
    asset_id: str | None = None
    deduplicated: bool = False
    error: str | None = None
    asset: dict[str, Any] = field(default_factory=dict)


def guess_mime(path: Path) -> str | None:
    return mimetypes.guess_type(path.name)[0]


class _Counting:
    """A read-only file that moves a progress bar as httpx streams it out."""

    def __init__(self, raw: IO[bytes], advance: Callable[[int], None]) -> None:
        self.raw, self.advance = raw, advance

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.advance(len(data))
        return data

    def fileno(self) -> int:  # httpx sizes the part with fstat
        return self.raw.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


def sha256_of(path: Path, advance: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(HASH_BLOCK), b""):
            digest.update(block)
            advance(len(block))
    return digest.hexdigest()


def post_to_storage(grant: dict[str, Any], path: Path, mime: str,
                    advance: Callable[[int], None]) -> str:
    """The form POST of the grant's fields and the file; the ETag storage answers."""
    with path.open("rb") as raw:
        counting = _Counting(raw, advance)
        try:
            response = httpx.post(grant["uploadUrl"], data=dict(grant["uploadFields"]),
                                  files={"file": (path.name, counting, mime)},  # type: ignore[dict-item]
                                  timeout=STORAGE_TIMEOUT)
        except httpx.TransportError as error:
            raise CliError(f"storage could not be reached: {error}", EXIT_UNREACHABLE) from error
    if response.status_code not in (200, 201, 204):
        raise CliError(f"storage refused the upload of {path.name}: HTTP "
                       f"{response.status_code} {response.text[:300]}", EXIT_API_ERROR)
    etag: str = response.headers.get("ETag", "")
    return etag.strip('"')


def upload_one(api: Api, path: Path, mime: str, kind: str | None, progress: Progress,
               task: TaskID) -> Outcome:
    size = path.stat().st_size
    name = path.name
    progress.update(task, description=f"hashing   {name}", total=size, completed=0)
    digest = sha256_of(path, lambda n: progress.advance(task, n))
    body: dict[str, Any] = {"sha256": digest, "sizeBytes": size, "mime": mime, "filename": name}
    if kind:
        body["kind"] = kind
    grant = api.call("POST", f"{API_PREFIX}/upload-url", json=body)
    asset_id = str(grant["assetId"])
    if not grant["uploadRequired"]:
        progress.update(task, description=f"[green]deduplicated[/] {name}", completed=size)
        progress.console.print(f"{name}: already uploaded as {asset_id} (deduplicated: same "
                               f"bytes, same asset; status {grant['status']})")
        return Outcome(path, asset_id, deduplicated=True, asset=api.asset(asset_id))
    progress.update(task, description=f"uploading {name}", completed=0)
    etag = post_to_storage(grant, path, mime, lambda n: progress.advance(task, n))
    progress.update(task, description=f"finalizing {name}", completed=size)
    asset = api.call("POST", f"{API_PREFIX}/{asset_id}/finalize", json={"etag": etag})
    progress.update(task, description=f"[green]uploaded[/] {name}")
    progress.console.print(f"{name}: uploaded and finalized as {asset_id} ({size} bytes)")
    return Outcome(path, asset_id, asset=dict(asset))


def upload_all(api: Api, files: Sequence[tuple[Path, str]], kind: str | None, parallel: int,
               console: Console) -> list[Outcome]:
    """Every file, `parallel` at a time; a file that fails does not stop the others."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeRemainingColumn(), console=console,
                        transient=False)
    outcomes: list[Outcome] = []
    with progress:
        tasks = [progress.add_task(f"waiting   {path.name}", total=path.stat().st_size or 1)
                 for path, _ in files]

        def run(index: int) -> Outcome:
            path, mime = files[index]
            try:
                return upload_one(api, path, mime, kind, progress, tasks[index])
            except CliError as error:
                progress.update(tasks[index], description=f"[red]failed[/] {path.name}")
                progress.console.print(f"{path.name}: [red]{error}[/]")
                return Outcome(path, error=str(error))

        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(files)))) as pool:
            outcomes = list(pool.map(run, range(len(files))))
    return outcomes


# --- watching assets get ready ----------------------------------------------------------------

def finished(asset: dict[str, Any], until: str) -> bool:
    status = asset.get("status")
    if status in SETTLED:
        return True
    if until == Until.PLAYABLE:
        return bool(asset.get("playable"))
    variants = asset.get("variants") or []
    return status == "ready" and bool(variants) and all(
        v.get("state") in DONE_STATES for v in variants)


_STATE_STYLE = {"succeeded": "green", "failed": "red", "running": "yellow", "pending": "dim"}
_STATUS_STYLE = {"ready": "green", "failed": "red", "quarantined": "red",
                 "processing": "yellow", "pending": "dim", "generating": "yellow"}


def variants_cell(asset: dict[str, Any]) -> str:
    variants = asset.get("variants") or []
    if not variants:
        return "[dim]planning[/]" if asset.get("status") == "processing" else ""
    return " ".join(f"[{_STATE_STYLE.get(v['state'], 'white')}]{v['name']}[/]"
                    for v in variants)


def summary(asset: dict[str, Any]) -> str:
    variants = asset.get("variants") or []
    done = sum(v.get("state") == "succeeded" for v in variants)
    return f"{done}/{len(variants)}" if variants else "-"


def watch_table(rows: Sequence[tuple[str, dict[str, Any]]], elapsed: float) -> Table:
    table = Table(title=f"assets ({elapsed:.0f} s)", title_justify="left", expand=False)
    for column in ("file", "asset", "status", "variants", "done"):
        table.add_column(column)
    for label, asset in rows:
        status = str(asset.get("status", "?"))
        playable = " [green]▶ playable[/]" if asset.get("playable") else ""
        table.add_row(label, str(asset.get("id", "")),
                      f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]{playable}",
                      variants_cell(asset), summary(asset))
    return table


def watch(api: Api, labelled: Sequence[tuple[str, str]], until: str, console: Console,
          timeout: float) -> dict[str, dict[str, Any]]:
    """Polls each asset and redraws the table until each is finished (or the timeout)."""
    started = time.monotonic()
    latest: dict[str, dict[str, Any]] = {}
    announced: set[tuple[str, str]] = set()

    def poll() -> None:
        for label, asset_id in labelled:
            if asset_id in latest and finished(latest[asset_id], until):
                continue
            asset = api.asset(asset_id)
            latest[asset_id] = asset
            for milestone in ("playable", "complete"):
                reached = bool(asset.get("playable")) if milestone == "playable" else \
                    finished(asset, Until.COMPLETE) and asset.get("status") == "ready"
                if reached and (asset_id, milestone) not in announced:
                    announced.add((asset_id, milestone))
                    console.print(f"{label}: {asset_id} {milestone} after "
                                  f"{time.monotonic() - started:.1f} s ({summary(asset)} "
                                  "variants)")
            if asset.get("status") in SETTLED and (asset_id, "settled") not in announced:
                announced.add((asset_id, "settled"))
                reason = asset.get("quarantineReason") or ""
                console.print(f"{label}: {asset_id} [red]{asset['status']}[/] {reason}")

    def render() -> Group:
        rows = [(label, latest.get(asset_id, {"id": asset_id, "status": "pending"}))
                for label, asset_id in labelled]
        return Group(watch_table(rows, time.monotonic() - started))

    with Live(render(), console=console, refresh_per_second=4, transient=False) as live:
        while True:
            poll()
            live.update(render())
            if all(a in latest and finished(latest[a], until) for _, a in labelled):
                break
            if time.monotonic() - started > timeout:
                raise CliError(f"still not {until} after {timeout:.0f} s", EXIT_TIMEOUT)
            time.sleep(POLL_SECONDS)
    return latest
