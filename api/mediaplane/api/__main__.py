"""`python -m mediaplane.api`: serve the REST API with uvicorn (uvloop, httptools)."""

from __future__ import annotations

import argparse
import logging

import uvicorn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mediaplane-api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s: %(message)s")
    uvicorn.run("mediaplane.api.app:create_app", factory=True, host=args.host, port=args.port,
                loop="uvloop", http="httptools", access_log=False, log_level=args.log_level,
                proxy_headers=True, server_header=False, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
