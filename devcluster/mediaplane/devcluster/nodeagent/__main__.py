"""`python -m mediaplane.devcluster.nodeagent --kubeconfig K --state-dir D`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from kubernetes_asyncio.config import new_client_from_config

from mediaplane.devcluster.nodeagent import NODE_NAME
from mediaplane.devcluster.nodeagent.agent import NodeAgent
from mediaplane.devcluster.nodeagent.api import Kube

log = logging.getLogger("mediaplane.devcluster.nodeagent")


async def serve(kubeconfig: Path, state_dir: Path, node_name: str) -> None:
    tmp = state_dir / "nodeagent-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    client = await new_client_from_config(config_file=str(kubeconfig), temp_file_path=str(tmp))
    agent = NodeAgent(
        Kube(client), node_name, state_dir / "pods", os.environ.get("PATH", os.defpath)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    main = asyncio.create_task(agent.run(), name="agent")
    stopper = asyncio.create_task(stop.wait(), name="stop")
    try:
        done, _ = await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if main in done:
            main.result()  # surface why the agent ended
    finally:
        log.info("node agent stopping")
        main.cancel()
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main
        await agent.shutdown()
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mediaplane.devcluster.nodeagent")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True, help="pods live in STATE_DIR/pods")
    parser.add_argument("--node-name", default=NODE_NAME)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(args.kubeconfig, args.state_dir.resolve(), args.node_name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
