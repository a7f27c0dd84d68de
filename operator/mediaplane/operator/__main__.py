"""`python -m mediaplane.operator`: run the operator (kopf) over all namespaces."""

from __future__ import annotations

import argparse
import logging

import kopf

import mediaplane.operator.handlers  # noqa: F401 (registers the handlers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mediaplane-operator")
    parser.add_argument("--standalone", action="store_true",
                        help="no peering: only for a single replica (dev, tests)")
    parser.add_argument("--peering", default="mediaplane",
                        help="kopf peering name for several replicas (one is active)")
    parser.add_argument("--liveness", default=None,
                        help="liveness endpoint, e.g. http://0.0.0.0:8081/healthz")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    kopf.run(clusterwide=True, standalone=args.standalone,
             peering_name=None if args.standalone else args.peering,
             liveness_endpoint=args.liveness)


if __name__ == "__main__":
    main()
