"""The README says what the code does: its table of error codes is the API's table, its exit
codes are the command's, and it shows the CLI before kubectl and the REST API."""

from __future__ import annotations

import re
from pathlib import Path

from mediaplane.api import errordocs
from mediaplane.api.errors import CODES
from mediaplane.cli import client
from mediaplane.cli.main import EXIT_CODES

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_error_table_is_the_api_table() -> None:
    text = README.read_text()
    assert errordocs.rewrite(text) == text, "README's error codes differ: run `make docs`"
    rows = re.findall(r"^\| `([a-z_.]+)` \| (\d{3}) \|", text, flags=re.MULTILINE)
    assert sorted(rows) == sorted((c.code, str(c.status)) for c in CODES.values())


def test_rewrite_replaces_only_the_table() -> None:
    stale = f"intro\n{errordocs.BEGIN}\n| old | table |\n{errordocs.END}\noutro\n"
    fresh = errordocs.rewrite(stale)
    assert fresh.startswith("intro\n")
    assert fresh.endswith(f"{errordocs.END}\noutro\n")
    assert "| old | table |" not in fresh
    assert "`media.not_found` | 404 |" in fresh


def test_the_exit_codes_are_the_commands() -> None:
    section = README.read_text().split("<!-- exit-codes -->")[1].split("<!-- /exit-codes -->")[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, flags=re.MULTILINE)}
    codes = {value for name, value in vars(client).items()
             if name.startswith("EXIT_") and isinstance(value, int)}
    assert documented == codes
    for code in codes - {client.EXIT_OK}:
        assert f" {code} " in EXIT_CODES, f"`mediaplane --help` does not explain exit {code}"


def test_the_cli_path_comes_first() -> None:
    headings = [line for line in README.read_text().splitlines() if line.startswith("## ")]
    order = [headings.index(h) for h in ("## Upload, watch and play with the CLI",
                                          "## Try it with kubectl", "## Use the REST API")]
    assert order == sorted(order)
    assert order[0] == 0, "the CLI is the first section"
