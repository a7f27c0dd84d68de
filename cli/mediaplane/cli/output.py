"""How the verbs print: rich tables for people, `-o json` for scripts (plain JSON on stdout,
nothing else there)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[Format, typer.Option(
    "--output", "-o", help="table for people, json for scripts.", case_sensitive=False)]

console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def variants_done(asset: dict[str, Any]) -> str:
    variants = asset.get("variants") or []
    if not variants:
        return "-"
    done = sum(v.get("state") == "succeeded" for v in variants)
    return f"{done}/{len(variants)}"


def assets_table(items: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in ("ID", "KIND", "STATUS", "VARIANTS", "SIZE", "NAME", "CREATED"):
        table.add_column(column, no_wrap=column == "ID")
    for asset in items:
        table.add_row(asset["id"], asset["kind"], asset["status"], variants_done(asset),
                      human_size(asset.get("sizeBytes")), asset.get("filename") or "",
                      (asset.get("createdAt") or "")[:19].replace("T", " "))
    return table


def asset_detail(asset: dict[str, Any]) -> list[Table]:
    facts = Table(show_header=False, box=None, pad_edge=False)
    facts.add_column(style="bold")
    facts.add_column()
    rows = [("id", asset["id"]), ("kind", asset["kind"]), ("source", asset["source"]),
            ("status", asset["status"] + (" (playable)" if asset.get("playable") else "")),
            ("file", asset.get("filename") or "-"), ("mime", asset["mime"]),
            ("size", human_size(asset.get("sizeBytes"))), ("sha256", asset.get("sha256") or "-")]
    if asset.get("width"):
        rows.append(("dimensions", f"{asset['width']}x{asset['height']}"))
    if asset.get("durationSeconds"):
        rows.append(("duration", f"{asset['durationSeconds']:.1f} s"))
    if asset.get("quarantineReason"):
        rows.append(("quarantined", asset["quarantineReason"]))
    generation = asset.get("generation")
    if generation:
        rows.append(("generation", f"{generation['type']} with {generation['model']}: "
                     f"{generation['state']}" + (f" ({generation.get('reason')}: "
                                                  f"{generation.get('message')})"
                                                  if generation.get("reason") else "")))
    if asset.get("player"):
        rows.append(("player", asset["player"]))
    rows.append(("created", asset.get("createdAt") or "-"))
    for key, value in rows:
        facts.add_row(key, str(value))
    tables = [facts]
    if asset.get("variants"):
        variants = Table(title="variants", title_justify="left", box=None, pad_edge=False)
        for column in ("NAME", "TYPE", "STATE", "SIZE", "DIMENSIONS", "CODECS"):
            variants.add_column(column)
        for v in asset["variants"]:
            dims = f"{v['width']}x{v['height']}" if v.get("width") else ""
            variants.add_row(v["name"], v["type"], v["state"], human_size(v.get("sizeBytes")),
                             dims, v.get("codecs") or "")
        tables.append(variants)
    if asset.get("captions"):
        tables.append(captions_table(asset["captions"]))
    return tables


def captions_table(captions: list[dict[str, Any]]) -> Table:
    table = Table(title="captions", title_justify="left", box=None, pad_edge=False)
    for column in ("LANGUAGE", "SOURCE", "APPROVED", "MODEL", "LABEL"):
        table.add_column(column)
    for c in captions:
        table.add_row(c["language"], c["source"], "yes" if c["approved"] else "no",
                      c.get("model") or "", c.get("label") or "")
    return table
