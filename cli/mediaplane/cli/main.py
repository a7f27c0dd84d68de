"""The `mediaplane` command.

Each command group lives in its own module with a `register(subparsers)` function that
adds its parser and sets `func` (called with the parsed args, returns an exit code).
Add a group by appending its module to `COMMAND_MODULES`. Modules are imported here but
should import heavy dependencies inside their command functions, so that `--help` and
light commands stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from typing import Protocol, cast

COMMAND_MODULES: list[str] = [
    "mediaplane.cli.bucketcors",
    "mediaplane.cli.dev",
    "mediaplane.cli.tenants",
    "mediaplane.cli.tokens",
]

Subparsers = argparse._SubParsersAction  # argparse exposes no public name for it


class CommandModule(Protocol):
    def register(self, subparsers: Subparsers[argparse.ArgumentParser]) -> None: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediaplane", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = cast(CommandModule, importlib.import_module(name))
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    func = cast(Callable[[argparse.Namespace], int], args.func)
    return int(func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
