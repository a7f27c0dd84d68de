"""`python -m mediaplane.api`: serve the REST API with uvicorn (uvloop, httptools)."""

from __future__ import annotations

import argparse

import uvicorn

from mediaplane.core import logs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mediaplane-api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logs.configure("api", args.log_level)
    uvicorn.run("mediaplane.api.app:create_app", factory=True, host=args.host, port=args.port,
                loop="uvloop", http="httptools", access_log=False, log_level=args.log_level,
                proxy_headers=True, server_header=False, timeout_graceful_shutdown=5,
                log_config=None)


if __name__ == "__main__":
    main()
