"""Pipeline latency on the dev environment: MediaAsset creation → first variant pod running,
→ playable, → complete, against raw ffmpeg running the same commands in the same run.

Not a test: it prints p50/p95/p99 and ratios against the contract's SLO ("transcode start
p95 < 30 s after upload") and our targets: first variant pod running p95 ≤ 1 s, first
playable within 1.25x the raw ffmpeg time of the lowest rung, and the whole ladder (every
rung, the audio, the poster, the storyboard: the plan's own commands run one after another)
no slower than those commands back to back (parallel Jobs must not cost more than running
them in sequence). Those commands run back to back after every run, so each run's ratio
compares it with the machine of the same minutes.

By default two clips, one asset at a time: 3 runs of a 60 s 1920x1080 clip and 5 of a 20 s
1280x720 one, H.264 with stereo AAC (copied into the audio rendition, as a phone's or
camera's is). Each run is preceded by a raw encode of the lowest rung, so both see the same
machine. For one run of each clip it prints where the time to playable goes: the pod that
encodes the lowest rung (the probe's own, by default) running, its worker's first log line,
ffmpeg done, upload done, pod succeeded, playable, beside the other pods that share the
cores.

Then, for the 20 s clip, uploads that do not come one at a time: an asset created while an
earlier one's rest of the ladder encodes (0.6 s after the earlier one is playable). Its
time to playable, against a raw encode on the quiet machine just before, shows what the
rest of the ladder's low CPU request buys the first wave of the next upload (set
MEDIAPLANE_WORKER_BACKGROUND_CPU_REQUEST=500m, the first wave's own, for the figure
without it).

The marks come from watches of the pods and the asset, not from polling: a list every 20 ms
loads the API server on the cores it measures (on 2 cores it made playable 8% slower).

    .venv/bin/python -m bench.pipeline [--runs N] [--seconds S --height H] [--channels C]
                                       [--beside-runs N]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import resource
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from bench.raw import Bare, Raw, bare_ladder, lowest_rung, raw_job, raw_run
from bench.stats import load_note, percentile, row
from mediaplane.core import keys, names
from mediaplane.core.states import PodPhase
from mediaplane.core.storage import Storage
from mediaplane.core.tasks import (
    TASK_ENV,
    VariantSpec,
    VariantType,
)
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.services import start_operator
from tests.support.assets import manifest
from tests.support.media import Media, video_clip

SLO_TRANSCODE_START = 30.0  # contract: transcode start p95 < 30 s after upload
TARGET_FIRST_POD = 1.0
TARGET_PLAYABLE_RATIO = 1.25
TARGET_LADDER_RATIO = 1.0
# (seconds, height, runs): the 60 s 1080p clip, and the 20 s 720p one.
DEFAULT_CLIPS = ((60, 1080, 3), (20, 720, 5))
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mediaplane" / "bench"
WATCH_SECONDS = 5  # each watch request's length: a stopped watcher ends within this


# --- CPU by process ------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcCpu:
    name: str  # what the process is, from its command line
    parent: int
    own: float  # CPU seconds (user + system) of the process itself
    children: float  # of its children it has waited for (exited pods, their ffmpeg)


def _what(cmdline: str, comm: str) -> str:
    for marker, name in (("kube-apiserver", "kube-apiserver"), ("etcd", "etcd"),
                         ("weed", "seaweedfs (S3)"), ("controller-manager", "controller-manager"),
                         ("mediaplane.operator", "operator"), ("nodeagent", "node agent"),
                         ("mediaplane-worker", "worker (Python)"), ("ffmpeg", "ffmpeg"),
                         ("ffprobe", "ffprobe"), ("bench.pipeline", "bench (its watches)")):
        if marker in cmdline:
            return name
    return comm


def cpu_snapshot() -> dict[int, ProcCpu]:
    """CPU times of this process and its descendants (the dev cluster: control plane,
    operator, node agent, and the pods the node agent runs)."""
    procs: dict[int, tuple[str, int, float, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        procs[int(entry.name)] = (_what(cmdline, comm), int(fields[1]),
                                  (int(fields[11]) + int(fields[12])) / TICKS,
                                  (int(fields[13]) + int(fields[14])) / TICKS)
    mine = {os.getpid()}
    grew = True
    while grew:
        found = {pid for pid, p in procs.items() if p[1] in mine and pid not in mine}
        mine |= found
        grew = bool(found)
    return {pid: ProcCpu(*procs[pid]) for pid in mine if pid in procs}


def cpu_between(before: dict[int, ProcCpu], after: dict[int, ProcCpu]) -> dict[str, float]:
    """CPU seconds spent between two snapshots, by kind of process. A pod that ended in
    between is counted through the node agent, which waited for it ("pods that ended")."""
    spent: dict[str, float] = {}
    for pid, now in after.items():
        then = before.get(pid)
        own = now.own - (then.own if then else 0.0)
        children = now.children - (then.children if then else 0.0)
        spent[now.name] = spent.get(now.name, 0.0) + own
        if children > 0.005:
            key = ("pods that ended (workers, ffmpeg)" if now.name == "node agent"
                   else f"children of {now.name}")
            spent[key] = spent.get(key, 0.0) + children
    return {k: v for k, v in sorted(spent.items(), key=lambda kv: -kv[1]) if v >= 0.005}


# --- what the watches see ----------------------------------------------------------------


@dataclass
class PodSeen:
    labels: dict[str, str]
    videos: tuple[str, ...] = ()  # the video rungs it encodes (a probe's pod may encode one)
    running: float | None = None  # seconds since the asset's creation
    succeeded: float | None = None


def video_rungs(pod: k8s.V1Pod) -> tuple[str, ...]:
    """The video rungs a worker pod encodes, from the task in its environment: its own
    variant and those it encodes beside it (a shared decode, or the probe's lowest rung)."""
    env = {e.name: e.value for c in pod.spec.containers for e in c.env or []}
    try:
        task = json.loads(env.get(TASK_ENV) or "{}")
    except ValueError:
        return ()
    specs = [task.get("variant") or {}, *((a.get("variant") or {}) for a in task.get("also") or [])]
    return tuple(v["name"] for v in specs if v.get("type") == "video" and v.get("name"))


@dataclass
class Timeline:
    """One asset as the watches saw it, in seconds since its creation."""

    name: str
    created: float = math.nan  # time.monotonic() at the create call
    created_wall: float = math.nan  # time.time() at the same moment (worker log lines)
    pods: dict[str, PodSeen] = field(default_factory=dict)
    playable: float | None = None
    complete: float | None = None
    status: dict[str, Any] = field(default_factory=dict)
    cpu_at_creation: dict[int, ProcCpu] = field(default_factory=dict)
    cpu_to_playable: dict[str, float] = field(default_factory=dict)  # by kind of process
    cpu_to_complete: dict[str, float] = field(default_factory=dict)

    def first_video_pod(self) -> float | None:
        times = [p.running for p in self.pods.values()
                 if p.videos and p.running is not None]
        return min(times) if times else None

    def hand_offs(self) -> tuple[float, float]:
        """Seconds from the first wave's last pod succeeding (the pods that ended before
        playable) to playable, and to the first pod of the rest of the ladder running: the
        operator's reaction at the wave's end, on each path (NaN where not seen)."""
        if self.playable is None:
            return math.nan, math.nan
        playable = self.playable
        ended = [p.succeeded for p in self.pods.values()
                 if p.succeeded is not None and p.succeeded <= playable]
        if not ended:
            return math.nan, math.nan
        done = max(ended)
        later = [p.running for p in self.pods.values()
                 if p.running is not None and p.running > done]
        return playable - done, (min(later) - done) if later else math.nan

    def marks(self) -> dict[str, float]:
        found = {"first_pod": self.first_video_pod(), "playable": self.playable,
                 "complete": self.complete}
        return {k: v for k, v in found.items() if v is not None}


class Watches:
    """Watches of one namespace's pods and MediaAssets, each on its own thread, recording the
    moments the bench measures for the assets it was told to expect."""

    def __init__(self, api: k8s.ApiClient, tenant: str) -> None:
        self.core = k8s.CoreV1Api(api)
        self.custom = k8s.CustomObjectsApi(api)
        self.tenant = tenant
        self.timelines: dict[str, Timeline] = {}
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(what,), daemon=True,
                                         name=f"watch-{what}") for what in ("pods", "assets")]

    def __enter__(self) -> Watches:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=WATCH_SECONDS + 5)

    def expect(self, name: str) -> Timeline:
        with self.changed:
            timeline = self.timelines[name] = Timeline(name)
        return timeline

    def wait(self, timeline: Timeline, until: str, timeout: float) -> None:
        def reached() -> bool:
            return (timeline.complete is not None
                    or (until == "playable" and timeline.playable is not None))

        with self.changed:
            if not self.changed.wait_for(reached, timeout=timeout):
                raise RuntimeError(f"{timeline.name} did not complete: {timeline.status}")

    def _loop(self, what: str) -> None:
        version: str | None = None
        while not self.stopping.is_set():
            kwargs: dict[str, Any] = {"timeout_seconds": WATCH_SECONDS}
            if version:
                kwargs["resource_version"] = version
            try:
                if what == "pods":
                    stream = k8s_watch.Watch().stream(
                        self.core.list_namespaced_pod, self.tenant,
                        label_selector=names.LABEL_ASSET, **kwargs)
                else:
                    stream = k8s_watch.Watch().stream(
                        self.custom.list_namespaced_custom_object, names.GROUP,
                        names.VERSION, self.tenant, names.ASSET_PLURAL, **kwargs)
                for event in stream:
                    now = time.monotonic()
                    if what == "pods":
                        version = event["object"].metadata.resource_version
                        self._pod(event["object"], now)
                    else:
                        version = event["object"]["metadata"]["resourceVersion"]
                        self._asset(event["object"], now)
            except ApiException as exc:
                if exc.status == 410:  # the version is too old: list again
                    version = None
                    continue
                print(f"watch of {what}: {exc.status} {exc.reason}; watching again", flush=True)
                time.sleep(0.5)
            except (OSError, urllib3.exceptions.HTTPError) as exc:  # a dropped connection
                print(f"watch of {what}: {exc}; watching again", flush=True)
                time.sleep(0.5)

    def _pod(self, pod: k8s.V1Pod, now: float) -> None:
        labels = pod.metadata.labels or {}
        with self.changed:
            timeline = self.timelines.get(labels.get(names.LABEL_ASSET, ""))
            if timeline is None or math.isnan(timeline.created):
                return
            seen = timeline.pods.setdefault(pod.metadata.name, PodSeen(labels, video_rungs(pod)))
            phase = pod.status.phase if pod.status else None
            if phase in (PodPhase.RUNNING, PodPhase.SUCCEEDED) and seen.running is None:
                seen.running = now - timeline.created
            if phase == PodPhase.SUCCEEDED and seen.succeeded is None:
                seen.succeeded = now - timeline.created
            self.changed.notify_all()

    def _asset(self, asset: dict[str, Any], now: float) -> None:
        with self.changed:
            timeline = self.timelines.get(asset["metadata"]["name"])
            if timeline is None or math.isnan(timeline.created):
                return
            status = timeline.status = asset.get("status") or {}
            if status.get("playable") and timeline.playable is None:
                timeline.playable = now - timeline.created
                timeline.cpu_to_playable = cpu_between(timeline.cpu_at_creation,
                                                       cpu_snapshot())
            if timeline.complete is None and any(
                    c["type"] == "Complete" and c["status"] == "True"
                    for c in status.get("conditions", [])):
                timeline.complete = now - timeline.created
                timeline.cpu_to_complete = cpu_between(timeline.cpu_at_creation,
                                                       cpu_snapshot())
            self.changed.notify_all()


def run_asset(watches: Watches, storage: Storage, tenant: str, clip: Media, *,
              until: str = "complete", timeout: float = 600,
              asset_id: str | None = None) -> Timeline:
    """Stores the clip as a new asset's source, creates the MediaAsset and waits, through
    the watches, until it is complete (or playable, `until="playable"`)."""
    timeline = start_asset(watches, storage, tenant, clip, asset_id)
    watches.wait(timeline, until, timeout)
    return timeline


def start_asset(watches: Watches, storage: Storage, tenant: str, clip: Media,
                asset_id: str | None = None) -> Timeline:
    """Stores the clip as a new asset's source and creates the MediaAsset."""
    asset_id = asset_id or names.new_asset_id()
    storage.client.put_object(Bucket=storage.bucket, Key=keys.source_key(tenant, asset_id),
                              Body=clip.data, ContentType=clip.mime)
    body = manifest(tenant, asset_id, clip)
    timeline = watches.expect(names.name_from_asset_id(asset_id))
    timeline.cpu_at_creation = cpu_snapshot()
    with watches.changed:  # the watches ignore the asset until it has a creation time
        timeline.created_wall, timeline.created = time.time(), time.monotonic()
    watches.custom.create_namespaced_custom_object(names.GROUP, names.VERSION, tenant,
                                                   names.ASSET_PLURAL, body)
    return timeline


def measure_one(custom: k8s.CustomObjectsApi, core: k8s.CoreV1Api, storage: Storage,
                tenant: str, clip: Any, *, until: str = "complete", timeout: float = 600,
                asset_id: str | None = None) -> dict[str, float]:
    """Seconds from the MediaAsset's creation to its first video pod running, to playable
    and to complete (or only until `until` is "playable"), with watches of its own."""
    del core
    with Watches(custom.api_client, tenant) as watches:
        return run_asset(watches, storage, tenant, clip, until=until, timeout=timeout,
                         asset_id=asset_id).marks()


def bench_tenant(cluster: DevCluster, clip: Media) -> tuple[
        k8s.CustomObjectsApi, k8s.CoreV1Api, Storage, str, str]:
    """Clients of the dev cluster, its "bench" tenant, and the clip stored once under a
    key of its own for raw ffmpeg to read (custom, core, storage, tenant, that key)."""
    env = cluster.env()
    api = k8s_config.new_client_from_config(config_file=env["KUBECONFIG"])
    custom, core = k8s.CustomObjectsApi(api), k8s.CoreV1Api(api)
    storage = Storage.from_env(env)
    tenant = "bench"
    try:
        core.create_namespace({"metadata": {"name": tenant}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    raw_key = keys.asset_prefix(tenant, names.new_asset_id()) + "source"
    storage.client.put_object(Bucket=storage.bucket, Key=raw_key, Body=clip.data)
    return custom, core, storage, tenant, raw_key


def planned_variants(custom: k8s.CustomObjectsApi, tenant: str, name: str
                     ) -> list[list[VariantSpec]]:
    """What each of the asset's variant Jobs encoded, read from its TranscodeJobs: one
    variant, or a shared decode's rungs (the leader's own first). What the probe's pod made
    besides its verdict counts as a Job of its own, its one ffmpeg: the lowest rung with
    the audio it copied (`commands.rung_and_audio_command`), or either alone. The probe's
    checks are not timed."""
    tjs = custom.list_namespaced_custom_object(
        names.GROUP, names.VERSION, tenant, names.JOB_PLURAL,
        label_selector=f"{names.LABEL_ASSET}={name}")["items"]
    probes = {tj["metadata"]["name"] for tj in tjs if not tj["spec"].get("variant")}
    jobs = [[VariantSpec.model_validate(tj["spec"]["variant"]),
             *(VariantSpec.model_validate(v) for v in tj["spec"].get("alsoEncodes") or [])]
            for tj in tjs if tj["spec"].get("variant")
            and tj["spec"].get("encodedBy") in (None, *probes)]
    # The rung and the audio copy the probe's pod made come from its one ffmpeg
    # (`commands.rung_and_audio_command`).
    made = {tj["spec"]["variant"]["name"] for tj in tjs
            if tj["spec"].get("variant") and tj["spec"].get("encodedBy") in probes}
    by_probe = [job[0] for job in jobs if len(job) == 1 and job[0].name in made]
    rung = next((v for v in by_probe if v.type is VariantType.VIDEO), None)
    copy = next((v for v in by_probe if v.type is VariantType.AUDIO and v.audio_copy), None)
    if rung is not None and copy is not None:
        jobs = [job for job in jobs if job not in ([rung], [copy])] + [[rung, copy]]
    return sorted(jobs, key=lambda job: (job[0].type, job[0].height or 0))


# --- one asset's breakdown ---------------------------------------------------------------


def worker_lines(cluster: DevCluster, tenant: str, pod: str) -> list[dict[str, Any]]:
    path = cluster.pods_dir / tenant / pod / "worker.log"
    lines = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def worker_cpu(lines: list[dict[str, Any]]) -> tuple[float, float] | None:
    """(the worker's own CPU seconds, its commands') from its last line (`main.log_cpu`)."""
    for line in reversed(lines):
        event = str(line.get("event", ""))
        if event.startswith("cpu: worker "):
            words = event.replace(",", "").split()
            return float(words[2]), float(words[6])
    return None


def _since(timeline: Timeline, stamp: str) -> float:
    moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return moment - timeline.created_wall


def _at(value: float | None, width: int = 8) -> str:
    return f"{'-':>{width}}" if value is None or math.isnan(value) else f"{value:{width}.2f}"


def breakdown(cluster: DevCluster, tenant: str, timeline: Timeline, lowest: str,
              raw_lowest: float) -> list[str]:
    """Where the time went, per pod (those playable waits for first: the probe, the lowest
    rung, the audio; then the rest of the ladder): running, the worker's first line,
    ffmpeg's start and end (from its own line), the upload's end, succeeded. Then what
    playable would be with the lowest rung's ffmpeg as fast as raw (`raw_lowest`): the
    fixed costs around the encode, which no encoder speed removes."""
    text = [f"{'pod (task variant)':<20} {'running':>8} {'1st log':>8} {'ffmpeg':>8} "
            f"{'->':>6} {'uploaded':>8} {'succeeded':>9}  CPU-s: {'worker':>6} {'ffmpeg':>6}"]
    cpu_total = [0.0, 0.0]
    fixed: tuple[float, float, float] | None = None  # pod start, worker start, after ffmpeg
    for pod, seen in sorted(timeline.pods.items(), key=lambda p: p[1].running or math.inf):
        task = seen.labels.get(names.LABEL_TASK, "?")
        variant = seen.labels.get(names.LABEL_TRANSCODE_JOB, "").rsplit("-", 1)[-1]
        if seen.running is None:
            continue
        lines = worker_lines(cluster, tenant, pod)
        first = _since(timeline, lines[0]["timestamp"]) if lines else None
        encodes_lowest = lowest in seen.videos
        wrote = f"ffmpeg wrote {lowest} " if encodes_lowest else "ffmpeg wrote"
        ffmpeg = next((ln for ln in lines if ln["event"].startswith(wrote)), None)
        upload = next((ln for ln in reversed(lines) if ln["event"].startswith("uploaded")),
                      None)  # the last: a shared decode uploads one rendition at a time
        end = _since(timeline, ffmpeg["timestamp"]) if ffmpeg else None
        took = float(ffmpeg["event"].split(" in ")[-1].split()[0]) if ffmpeg else None
        uploaded = _since(timeline, upload["timestamp"]) if upload else None
        label = task if task == variant else f"{task} {variant}"
        label += " *" if encodes_lowest else ""
        if encodes_lowest and end is not None and took is not None and timeline.playable:
            fixed = (seen.running, end - took - seen.running, timeline.playable - end)
        cpu = worker_cpu(lines)
        for index, value in enumerate(cpu or ()):
            cpu_total[index] += value
        text.append(f"{label:<20} {_at(seen.running)} {_at(first)} "
                    f"{_at(end - took if end is not None and took is not None else None)} "
                    f"{_at(end, 6)} {_at(uploaded)} {_at(seen.succeeded, 9)}         "
                    f"{_at(cpu[0] if cpu else None, 6)} {_at(cpu[1] if cpu else None, 6)}")
    text.append(f"{'all pods':<20} {'':>8} {'':>8} {'':>8} {'':>6} {'':>8} {'':>9}         "
                f"{_at(cpu_total[0], 6)} {_at(cpu_total[1], 6)}")
    text.append(f"asset playable at {_at(timeline.playable, 0)} s, complete at "
                f"{_at(timeline.complete, 0)} s (seconds since its creation; * the lowest rung)")
    if fixed is not None:
        floor = sum(fixed) + raw_lowest
        text.append(f"with the lowest rung's ffmpeg as fast as raw ({raw_lowest:.2f} s): "
                    f"playable at {floor:.2f} s = {floor / raw_lowest:.2f}x raw; fixed costs "
                    f"{sum(fixed):.2f} s = pod running {fixed[0]:.2f} + worker to ffmpeg "
                    f"{fixed[1]:.2f} + ffmpeg's end to playable {fixed[2]:.2f}")
    return text


# --- one clip ----------------------------------------------------------------------------


@dataclass
class ClipResult:
    clip: Media
    seconds: int
    height: int
    runs: list[Timeline]
    raw_lowest: list[Raw]
    # The Jobs' own ffmpeg commands in turn, after each run: its whole ladder's comparison
    # measured minutes from it, as its lowest rung's raw encode is (the commands in turn
    # alone varied by 5 to 8% between runs of the bench an hour apart).
    ladders: list[list[Raw]]
    # The same work with nothing of Kubernetes, after each ladder in turn (`raw.bare_ladder`).
    bare: list[Bare]
    alone: list[Raw]  # one ffmpeg per variant, in turn (what a shared decode replaces)
    bench_cpu: float
    breakdown: list[str]

    def ladder_walls(self) -> list[float]:
        return [sum(r.wall for r in ladder) for ladder in self.ladders]

    def middle(self) -> int:
        """The run with the median playable (the one `breakdown` describes)."""
        order = sorted(range(len(self.runs)), key=lambda i: self.runs[i].playable or math.inf)
        return order[len(order) // 2]


def bench_clip(cluster: DevCluster, seconds: int, height: int, runs: int, channels: int,
               warm_up: bool, scratch: Path) -> ClipResult:
    clip = video_clip(CACHE, seconds=seconds, width=height * 16 // 9, height=height,
                      channels=channels)
    custom, _, storage, tenant, raw_key = bench_tenant(cluster, clip)
    lowest = lowest_rung(height)
    timelines: list[Timeline] = []
    raw: list[Raw] = []
    ladders: list[list[Raw]] = []
    bare: list[Bare] = []
    bench_cpu = 0.0
    plan: list[list[VariantSpec]] = []
    with Watches(custom.api_client, tenant) as watches:
        if warm_up:  # caches, imports, the operator's first reconciles
            raw_run(storage, raw_key, lowest, scratch)
            run_asset(watches, storage, tenant, clip)
        for index in range(runs):
            print(f"  {seconds} s {height}p: run {index + 1} of {runs}", flush=True)
            raw.append(raw_run(storage, raw_key, lowest, scratch))
            own_before = resource.getrusage(resource.RUSAGE_SELF)
            timelines.append(run_asset(watches, storage, tenant, clip))
            own_after = resource.getrusage(resource.RUSAGE_SELF)
            bench_cpu += ((own_after.ru_utime - own_before.ru_utime)
                          + (own_after.ru_stime - own_before.ru_stime))
            plan = planned_variants(custom, tenant, timelines[-1].name)
            if index == 0:
                print(f"  {seconds} s {height}p: after each run, the whole ladder back to "
                      "back, the Jobs' own commands "
                      f"({', '.join('+'.join(v.name for v in job) for job in plan)})",
                      flush=True)
                print(f"  {seconds} s {height}p: then the same work with no Kubernetes: "
                      "the first wave with the probe's checks beside it, the rest at once, "
                      "every output stored", flush=True)
            ladders.append([raw_job(storage, raw_key, job, scratch) for job in plan])
            bare.append(bare_ladder(storage, raw_key, plan, clip.size, scratch))
    print(f"  {seconds} s {height}p: the same variants, one ffmpeg each", flush=True)
    alone = [raw_run(storage, raw_key, spec, scratch) for job in plan for spec in job]
    result = ClipResult(clip, seconds, height, timelines, raw, ladders, bare, alone,
                        bench_cpu, [])
    middle = result.middle()
    result.breakdown = breakdown(cluster, tenant, timelines[middle], lowest.name,
                                 statistics.median(r.wall for r in raw))
    return result


@dataclass
class BesideResult:
    """Assets created while another asset's rest of the ladder encodes."""

    raw_lowest: list[Raw]
    runs: list[Timeline]
    earlier: list[Timeline]


BESIDE_DELAY = 0.6  # after the earlier asset is playable: its rest of the ladder is encoding


def bench_beside(cluster: DevCluster, seconds: int, height: int, runs: int, channels: int,
                 scratch: Path) -> BesideResult:
    clip = video_clip(CACHE, seconds=seconds, width=height * 16 // 9, height=height,
                      channels=channels)
    custom, _, storage, tenant, raw_key = bench_tenant(cluster, clip)
    lowest = lowest_rung(height)
    result = BesideResult([], [], [])
    with Watches(custom.api_client, tenant) as watches:
        for index in range(runs):
            print(f"  {seconds} s {height}p beside another asset's ladder: run {index + 1} "
                  f"of {runs}", flush=True)
            result.raw_lowest.append(raw_run(storage, raw_key, lowest, scratch))
            earlier = start_asset(watches, storage, tenant, clip)
            watches.wait(earlier, "playable", 600)
            time.sleep(BESIDE_DELAY)
            later = run_asset(watches, storage, tenant, clip)
            watches.wait(earlier, "complete", 600)  # the machine quiet for the next raw
            result.runs.append(later)
            result.earlier.append(earlier)
    return result


def report_beside(result: BesideResult) -> None:
    raw_walls = [r.wall for r in result.raw_lowest]
    playable = [t.playable or math.nan for t in result.runs]
    ratios = [p / r for p, r in zip(playable, raw_walls, strict=True)]
    print(f"\nan asset created {BESIDE_DELAY} s after another one's playable (its rest of the "
          f"ladder encoding); {len(result.runs)} runs; background CPU request "
          f"{os.environ.get('MEDIAPLANE_WORKER_BACKGROUND_CPU_REQUEST', 'default')}")
    print(row("raw ffmpeg, lowest rung (quiet)", raw_walls))
    print(row("create -> playable, beside", playable,
              statistics.median(raw_walls) * TARGET_PLAYABLE_RATIO, "1.25raw"))
    print(f"{'playable beside / raw lowest rung':<34} p50={statistics.median(ratios):5.2f}x "
          f"p95={percentile(ratios, 95):5.2f}x  (target <= {TARGET_PLAYABLE_RATIO}x)")
    print(row("the earlier asset: -> complete", [t.complete or math.nan for t in result.earlier]))


def report(result: ClipResult, channels: int) -> None:
    clip, runs = result.clip, result.runs
    sound = "stereo, copied" if channels == 2 else f"{channels} ch, encoded"
    print(f"\nclip: {result.seconds}s {result.height * 16 // 9}x{result.height} H.264/AAC "
          f"({sound}), {clip.size / 1e6:.1f} MB; {len(runs)} runs, one asset at a time; "
          f"{load_note()}")
    raw_walls = [r.wall for r in result.raw_lowest]
    raw_median = statistics.median(raw_walls)
    first_pod = [t.first_video_pod() or math.nan for t in runs]
    playable = [t.playable or math.nan for t in runs]
    complete = [t.complete or math.nan for t in runs]
    print(row("raw ffmpeg, lowest rung", raw_walls))
    raw_cpu = statistics.median(r.cpu for r in result.raw_lowest)
    print(f"{'  (its CPU time)':<34} p50={raw_cpu:7.3f}s")
    print(row("create -> first variant pod running", first_pod, TARGET_FIRST_POD, "1s"))
    print(row("  (same, against the contract SLO)", first_pod, SLO_TRANSCODE_START, "SLO30s"))
    print(row("create -> playable", playable, raw_median * TARGET_PLAYABLE_RATIO, "1.25raw"))
    print(row("create -> complete", complete))
    hand_offs = [t.hand_offs() for t in runs]
    print(row("first wave done -> playable", [h[0] for h in hand_offs]))
    print(row("first wave done -> next pod running", [h[1] for h in hand_offs]))
    ratios = [p / r for p, r in zip(playable, raw_walls, strict=True)]
    print(f"{'playable / raw lowest rung':<34} p50={statistics.median(playable) / raw_median:5.2f}x"
          f"  (each run against the raw encode just before it: p50="
          f"{statistics.median(ratios):5.2f}x p95={percentile(ratios, 95):5.2f}x; "
          f"target <= {TARGET_PLAYABLE_RATIO}x)")
    ladder_walls = result.ladder_walls()
    middle_index = result.middle()
    middle_ladder = result.ladders[middle_index]
    ladder_wall = sum(r.wall for r in middle_ladder)
    ladder_cpu = sum(r.cpu for r in middle_ladder)
    parts = ", ".join(f"{r.name} {r.wall:.2f}" for r in middle_ladder)
    print(row("raw ffmpeg, whole ladder in turn", ladder_walls))
    print(f"{'  (in the median run)':<34} {ladder_wall:7.3f}s wall, {ladder_cpu:.2f} "
          f"CPU-s ({parts})")
    ladder_ratios = [c / w for c, w in zip(complete, ladder_walls, strict=True)]
    print(f"{'complete / whole ladder in turn':<34} "
          f"p50={statistics.median(complete) / statistics.median(ladder_walls):5.2f}x  "
          f"(each run against the ladder in turn just after it: "
          f"p50={statistics.median(ladder_ratios):5.2f}x p95={percentile(ladder_ratios, 95):5.2f}x"
          f" best={min(ladder_ratios):5.2f}x; target <= {TARGET_LADDER_RATIO}x)")
    alone_wall = sum(r.wall for r in result.alone)
    print(f"{'  (one ffmpeg per variant, in turn)':<34} {alone_wall:7.3f}s wall, "
          f"{sum(r.cpu for r in result.alone):.2f} CPU-s; complete against it: "
          f"p50={statistics.median(complete) / alone_wall:5.2f}x "
          f"p95={percentile(complete, 95) / alone_wall:5.2f}x")
    report_bare(result, complete, raw_walls)
    print(f"the bench's own CPU while the runs went: {result.bench_cpu:.2f} s "
          f"({result.bench_cpu / sum(complete):.1%} of one core)")
    print("where the time went (the run with the median playable):")
    for line in result.breakdown:
        print("  " + line)
    middle = runs[middle_index]
    total = sum(middle.cpu_to_playable.values())
    print(f"  CPU seconds from creation to playable, by process: {total:.2f} in "
          f"{middle.playable or math.nan:.2f} s of wall time "
          f"({total / (middle.playable or math.nan):.2f} cores busy)")
    for name, seconds in middle.cpu_to_playable.items():
        print(f"    {seconds:6.2f}  {name}")
    total = sum(middle.cpu_to_complete.values())
    print(f"  CPU seconds from creation to complete, by process: {total:.2f} in "
          f"{middle.complete or math.nan:.2f} s of wall time "
          f"({total / (middle.complete or math.nan):.2f} cores busy; the ladder's ffmpeg "
          f"commands in turn: {ladder_cpu:.2f})")
    for name, seconds in middle.cpu_to_complete.items():
        print(f"    {seconds:6.2f}  {name}")
    for line in ladder_floor(total, middle.complete or math.nan, ladder_wall, ladder_cpu,
                             os.cpu_count() or 1):
        print("  " + line)


def report_bare(result: ClipResult, complete: list[float], raw_walls: list[float]) -> None:
    """The whole ladder's target against what its work costs with no orchestration at all
    (`raw.bare_ladder`): the first figure is the best any schedule of Jobs could reach on
    these cores, the second what the pods and the control plane add to it."""
    bare_walls = [b.wall for b in result.bare]
    print(row("the same work, no Kubernetes", bare_walls))
    in_turn = [b / w for b, w in zip(bare_walls, result.ladder_walls(), strict=True)]
    print(f"{'  against the ladder in turn':<34} p50={statistics.median(in_turn):5.2f}x "
          f"p95={percentile(in_turn, 95):5.2f}x best={min(in_turn):5.2f}x  (the probe's checks "
          "and the uploads, less the idle time the commands in turn leave: the least any "
          "schedule of Jobs could reach here)")
    orchestrated = [c / b for c, b in zip(complete, bare_walls, strict=True)]
    print(f"{'complete / the same, no Kubernetes':<34} p50={statistics.median(orchestrated):5.2f}x"
          f" p95={percentile(orchestrated, 95):5.2f}x  (what pods, interpreters and the "
          "control plane add on the same cores)")
    first = [b.first_wave / r for b, r in zip(result.bare, raw_walls, strict=True)]
    print(f"{'  its first wave / raw lowest rung':<34} p50={statistics.median(first):5.2f}x "
          f"p95={percentile(first, 95):5.2f}x  (the rung with the probe's checks beside it, "
          "nothing stored: playable's least)")


def ladder_floor(spent: float, complete: float, ladder_wall: float, ladder_cpu: float,
                 cores: int) -> list[str]:
    """Why the whole ladder lands where it does against its commands in turn: no schedule
    finishes sooner than the CPU it spends spread over every core. The commands in turn
    leave cores idle (one ffmpeg keeps fewer than all of them busy); parallel Jobs can only
    win that idle time back, and everything besides ffmpeg (interpreters, uploads, S3, the
    control plane, all on the same cores here) is paid out of it."""
    floor = spent / cores
    idle = cores * ladder_wall - ladder_cpu
    return [
        f"the floor for this run's work: {spent:.2f} CPU-s / {cores} cores = {floor:.2f} s = "
        f"{floor / ladder_wall:.2f}x the ladder in turn (complete took {complete:.2f} s: "
        f"{floor / complete:.0%} of the cores' time used)",
        f"the ladder in turn leaves {idle:.2f} CPU-s idle ({cores} x {ladder_wall:.2f} s - "
        f"{ladder_cpu:.2f}); besides its ffmpeg commands this run spent "
        f"{spent - ladder_cpu:.2f}: under 1.0x needs that below the idle time, and every "
        "core busy throughout",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per clip (default: 3 of the 60 s clip, 5 of the 20 s one)")
    parser.add_argument("--seconds", type=int, default=None,
                        help="one clip of this duration (default: both clips)")
    parser.add_argument("--height", type=int, default=None,
                        help="one clip of this height, 16:9 (default: both clips)")
    parser.add_argument("--beside-runs", type=int, default=3,
                        help="runs of an asset created while another one's ladder encodes "
                        "(20 s clip; 0: none)")
    parser.add_argument("--channels", type=int, default=2,
                        help="audio channels: 2 (stereo AAC, copied into the audio "
                        "rendition as a phone's or camera's would be) or 1 (encoded)")
    args = parser.parse_args()
    clips: tuple[tuple[int, int, int], ...] = DEFAULT_CLIPS
    if args.seconds is not None or args.height is not None:
        clips = ((args.seconds or 20, args.height or 720, 5),)
    CACHE.mkdir(parents=True, exist_ok=True)

    results = []
    with tempfile.TemporaryDirectory(prefix="mediaplane-bench-") as tmp:
        work = Path(tmp)
        with DevCluster(work / "cluster") as cluster:
            start_operator(cluster)
            for index, (seconds, height, runs) in enumerate(clips):
                print(f"making or reusing the {seconds} s {height}p clip in {CACHE} ...",
                      flush=True)
                results.append(bench_clip(cluster, seconds, height, args.runs or runs,
                                          args.channels, index == 0, work))
            beside = None
            if args.beside_runs and (20, 720) in ((s, h) for s, h, _ in clips):
                beside = bench_beside(cluster, 20, 720, args.beside_runs, args.channels, work)
    for result in results:
        report(result, args.channels)
    if beside is not None:
        report_beside(beside)


if __name__ == "__main__":
    main()
