"""The README's table of error codes, made from `errors.CODES` so that the two cannot drift.

`python -m mediaplane.api.errordocs README.md` (or `make docs`) rewrites the table between
its two markers; `tests/unit/test_error_docs.py` fails when the README's table is not what
this module makes of the code table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mediaplane.api.errors import CODES

BEGIN = "<!-- error-codes: made by `make docs` from api/errors.py; edit the code, not this -->"
END = "<!-- /error-codes -->"


def table() -> str:
    """One row per code, by HTTP status then code."""
    rows = ["| code | HTTP | meaning |", "| --- | --- | --- |"]
    for entry in sorted(CODES.values(), key=lambda e: (e.status, e.code)):
        summary = entry.summary.replace("|", "\\|")
        rows.append(f"| `{entry.code}` | {entry.status} | {summary} |")
    return "\n".join(rows)


def rewrite(text: str) -> str:
    """`text` with the part between the markers replaced by the current table."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers are missing or out of order: {BEGIN!r} … {END!r}")
    return f"{text[:start]}{BEGIN}\n{table()}\n{text[end:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mediaplane.api.errordocs",
                                     description="Rewrite the error code table of a Markdown "
                                                 "file (between its markers).")
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    path: Path = args.path
    before = path.read_text()
    after = rewrite(before)
    if after != before:
        path.write_text(after)
        print(f"{path}: error code table updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
