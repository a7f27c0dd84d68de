"""`python -m mediaplane.operator`: run the operator (kopf) over all namespaces."""

from __future__ import annotations

import argparse
import logging
import secrets
from typing import Any

import kopf

import mediaplane.operator.handlers  # noqa: F401 (registers the handlers)
from mediaplane.core import logs

# kopf pauses every peer when two share the highest priority, so replicas of one
# Deployment (identical arguments) each draw their own: one works, the others stand by.
PRIORITY_RANGE = 2**31 - 1


def run_options(argv: list[str] | None = None) -> dict[str, Any]:
    """kopf.run's keyword arguments for these command-line arguments."""
    parser = argparse.ArgumentParser(prog="mediaplane-operator")
    parser.add_argument("--standalone", action="store_true",
                        help="no peering: only for a single replica (dev, tests)")
    parser.add_argument("--peering", default="mediaplane",
                        help="kopf peering name for several replicas (one is active)")
    parser.add_argument("--liveness", default=None,
                        help="liveness endpoint, e.g. http://0.0.0.0:8081/healthz")
    parser.add_argument("--priority", type=int, default=None,
                        help="peering priority (default: random, distinct per replica)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    options: dict[str, Any] = {
        "clusterwide": True, "standalone": args.standalone,
        "peering_name": None if args.standalone else args.peering,
        "liveness_endpoint": args.liveness, "verbose": args.verbose,
    }
    if not args.standalone:
        options["priority"] = (args.priority if args.priority is not None
                               else 1 + secrets.randbelow(PRIORITY_RANGE))
    return options


def main(argv: list[str] | None = None) -> None:
    options = run_options(argv)
    verbose = options.pop("verbose")
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.PLAIN)
    # Every line as JSON (kopf's own too, with the object it is about and the asset id).
    logs.configure("operator", logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    kopf.run(**options)


if __name__ == "__main__":
    main()
