"""One dev cluster with a real node for the session: kubelet, containerd and runc run the
project's own images, built here with BuildKit (`make test-real-node`).

Every test here is marked `realnode` (and `cluster`, so `make unit` leaves it out). It
needs root and the Debian packages of scripts/setup.sh's real-node list; without them it
is skipped and says which are missing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.ports import free_port
from mediaplane.devcluster.realnode import binaries
from mediaplane.devcluster.realnode.images import BuiltImage


def pytest_collection_modifyitems(items: list[Any]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.realnode)
            item.add_marker(pytest.mark.cluster)
    # The node's own tests first (the quickest signal), the chart next; test_down.py stops
    # the session's node and looks at what is left: it goes last.
    order = {here / "test_node.py": 0, here / "test_chart.py": 1, here / "test_down.py": 2}
    items.sort(key=lambda item: order.get(Path(str(item.fspath)), 0))


class RealNode:
    """The session's cluster with a real node, the images it runs, and its timings."""

    def __init__(self, cluster: DevCluster, images: dict[str, BuiltImage],
                 timings: dict[str, float]) -> None:
        self.cluster = cluster
        self.images = images
        self.timings = timings

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.cluster.env()}


@pytest.fixture(scope="session")
def real_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    problems = binaries.check_host()
    if problems:
        pytest.skip("no real node on this machine: " + "; ".join(problems))
    state = Path(tmp_path_factory.mktemp("realnode"))
    cluster = DevCluster(state, api_port=free_port(), node="containers")
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        cluster.start()
        timings["cluster"] = time.monotonic() - started
        assert cluster.node is not None
        started = time.monotonic()
        images = cluster.node.build_images()
        timings["images"] = time.monotonic() - started
        yield RealNode(cluster, images, timings)
    finally:
        cluster.stop()
