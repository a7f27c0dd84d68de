"""API server requests per asset, by verb and resource, on the dev environment.

Not a test. Every request the control plane serves costs CPU on the cores the encodes use
(on one 2-core machine the API server spent about 0.45 CPU-s per 20-second asset, see
`bench.pipeline`), and each write also costs etcd a revision and every watcher an event.
This counts them from the API server's own counter (`apiserver_request_total`), over a few
assets of the 20 s 720p clip made one after another (after one to warm up), so a change to
the operator shows what it adds or removes.

With `--trace`, the API server also writes an audit log (`DevCluster(audit=True)`), and
each asset's way from its creation to its probe pod running is printed step by step, with
the node agent's own log lines: which component each millisecond of that path waits for.

    .venv/bin/python -m bench.api_requests [--assets N] [--trace]
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.pipeline import CACHE, Watches, bench_tenant, run_asset
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.services import start_operator
from tests.support.media import video_clip

if TYPE_CHECKING:
    from kubernetes import client as k8s

    from bench.pipeline import Timeline

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


# The path from a MediaAsset's creation to its probe pod running: (step, verb, resource,
# subresource) of the first request of each, after the one before it.
TRACE_STEPS = (
    ("MediaAsset created (the client's POST answered)", "create", "mediaassets", ""),
    ("kopf's patch (finalizer) before the handler", "patch", "mediaassets", ""),
    ("operator reads the asset", "get", "mediaassets", ""),
    ("probe TranscodeJob created", "create", "transcodejobs", ""),
    ("its Job created", "create", "jobs", ""),
    ("Pod created (Job controller)", "create", "pods", ""),
    ("Pod bound to the node (node agent)", "create", "pods", "binding"),
    ("Running reported (node agent)", "patch", "pods", "status"),
)
_AGENT_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*: (\S+): (starting|"
                         r"container worker started)")


def _when(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def trace(cluster: DevCluster, timelines: list[Timeline]) -> dict[str, list[float]]:
    """Milliseconds from each asset's creation to the end of each step (audit log), and to
    the node agent's "starting" and "container started" lines."""
    requests = [json.loads(line) for line in cluster.audit_log_path.read_text().splitlines()]
    agent = []
    for line in (cluster.logs_dir / "nodeagent.log").read_text().splitlines():
        match = _AGENT_LINE.match(line)
        if match:
            stamp = datetime.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").timestamp()
            agent.append((stamp + int(match[2]) / 1000, match[3], match[4]))
    steps: dict[str, list[float]] = collections.defaultdict(list)
    for timeline in timelines:
        created, after = timeline.created_wall, timeline.created_wall - 0.01
        for title, verb, resource, sub in TRACE_STEPS:
            found = _first(requests, after, timeline.name, verb, resource, sub)
            if found is None:
                break
            after = _when(found["requestReceivedTimestamp"])
            steps[title].append((_when(found["stageTimestamp"]) - created) * 1000)
            if sub == "binding":  # the agent's own lines come between binding and Running
                seen = set()
                for stamp, pod, what in agent:
                    if (pod.split("/")[-1].startswith(timeline.name) and stamp >= after
                            and what not in seen):
                        seen.add(what)
                        steps[f"node agent: {what}"].append((stamp - created) * 1000)
    return steps


def _first(requests: list[dict[str, Any]], after: float, asset: str, verb: str,
           resource: str, sub: str) -> dict[str, Any] | None:
    for request in requests:
        ref = request.get("objectRef") or {}
        if (request["verb"] == verb and ref.get("resource") == resource
                and ref.get("subresource", "") == sub
                and (ref.get("name") or asset).startswith(asset)
                and _when(request["requestReceivedTimestamp"]) >= after):
            return request
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=3, help="assets counted (default 3)")
    parser.add_argument("--trace", action="store_true",
                        help="print each asset's steps from creation to its first pod running")
    args = parser.parse_args()
    steps: dict[str, list[float]] = {}
    clip = video_clip(CACHE, seconds=20, width=1280, height=720, channels=2)
    with tempfile.TemporaryDirectory(prefix="mediaplane-bench-") as tmp, \
            DevCluster(Path(tmp) / "cluster", audit=args.trace) as cluster:
        start_operator(cluster)
        custom, _, storage, tenant, _ = bench_tenant(cluster, clip)
        with Watches(custom.api_client, tenant) as watches:
            run_asset(watches, storage, tenant, clip)  # warm-up: caches, first reconciles
            time.sleep(SETTLE_SECONDS)
            before = requests_served(custom.api_client)
            timelines = [run_asset(watches, storage, tenant, clip)
                         for _ in range(args.assets)]
            time.sleep(SETTLE_SECONDS)
            after = requests_served(custom.api_client)
        if args.trace:
            steps = trace(cluster, timelines)
    per_asset = {key: (count - before.get(key, 0.0)) / args.assets
                 for key, count in after.items() if count > before.get(key, 0.0)}
    writes = {k: v for k, v in per_asset.items() if k[0] not in _READS}
    reads = {k: v for k, v in per_asset.items() if k[0] in _READS}
    print(f"API server requests per asset (20 s 720p, {args.assets} assets, one at a time)")
    for title, table in (("writes", writes), ("reads", reads)):
        print(f"{title}: {sum(table.values()):.1f} per asset")
        for (verb, resource, sub), count in sorted(table.items(), key=lambda kv: -kv[1]):
            print(f"  {count:6.1f}  {verb:<6} {resource}{'/' + sub if sub else ''}")
    if steps:
        print("from the MediaAsset's creation to its probe pod running, ms after the creation "
              "(p50, each asset)")
        for title, marks in sorted(steps.items(), key=lambda kv: statistics.median(kv[1])):
            print(f"  {statistics.median(marks):6.1f}  {title:<50} "
                  f"({', '.join(f'{m:.1f}' for m in marks)})")


if __name__ == "__main__":
    main()
