"""API server requests per asset, by verb and resource, on the dev environment.

Not a test. Every request the control plane serves costs CPU on the cores the encodes use
(on one 2-core machine the API server spent about 0.45 CPU-s per 20-second asset, see
`bench.pipeline`), and each write also costs etcd a revision and every watcher an event.
This counts them from the API server's own counter (`apiserver_request_total`), over a few
assets of the 20 s 720p clip made one after another (after one to warm up), so a change to
the operator shows what it adds or removes.

    .venv/bin/python -m bench.api_requests [--assets N]
"""

from __future__ import annotations

import argparse
import collections
import re
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.pipeline import CACHE, Watches, bench_tenant, run_asset
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.services import start_operator
from tests.support.media import video_clip

if TYPE_CHECKING:
    from kubernetes import client as k8s

Key = tuple[str, str, str]  # (verb, resource, subresource)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_READS = ("GET", "LIST", "WATCH")
# The watches and leases settle this long after an asset is complete.
SETTLE_SECONDS = 3.0


def requests_served(api: k8s.ApiClient) -> dict[Key, float]:
    """The API server's request counter, summed over codes, scopes and components."""
    response = api.call_api("/metrics", "GET", auth_settings=["BearerToken"],
                            _preload_content=False)
    counts: dict[Key, float] = collections.defaultdict(float)
    for line in response.data.decode().splitlines():
        if line.startswith("apiserver_request_total{"):
            labels = dict(_LABEL.findall(line))
            key = (labels.get("verb", ""), labels.get("resource", ""),
                   labels.get("subresource", ""))
            counts[key] += float(line.rsplit(" ", 1)[1])
    return dict(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=3, help="assets counted (default 3)")
    args = parser.parse_args()
    clip = video_clip(CACHE, seconds=20, width=1280, height=720, channels=2)
    with tempfile.TemporaryDirectory(prefix="mediaplane-bench-") as tmp, \
            DevCluster(Path(tmp) / "cluster") as cluster:
        start_operator(cluster)
        custom, _, storage, tenant, _ = bench_tenant(cluster, clip)
        with Watches(custom.api_client, tenant) as watches:
            run_asset(watches, storage, tenant, clip)  # warm-up: caches, first reconciles
            time.sleep(SETTLE_SECONDS)
            before = requests_served(custom.api_client)
            for _ in range(args.assets):
                run_asset(watches, storage, tenant, clip)
            time.sleep(SETTLE_SECONDS)
            after = requests_served(custom.api_client)
    per_asset = {key: (count - before.get(key, 0.0)) / args.assets
                 for key, count in after.items() if count > before.get(key, 0.0)}
    writes = {k: v for k, v in per_asset.items() if k[0] not in _READS}
    reads = {k: v for k, v in per_asset.items() if k[0] in _READS}
    print(f"API server requests per asset (20 s 720p, {args.assets} assets, one at a time)")
    for title, table in (("writes", writes), ("reads", reads)):
        print(f"{title}: {sum(table.values()):.1f} per asset")
        for (verb, resource, sub), count in sorted(table.items(), key=lambda kv: -kv[1]):
            print(f"  {count:6.1f}  {verb:<6} {resource}{'/' + sub if sub else ''}")


if __name__ == "__main__":
    main()
