"""The agent's decisions: which pod to bind, start, fail, kill or delete, once each.

Everything the API tells us goes through `handle()`, which only inspects the pod and
starts background tasks, so a slow or failing pod never blocks the watch, and one
pod's exception is logged, never fatal. The per-uid sets make repeated events (relists,
our own status updates coming back) harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from mediaplane.core.states import PodPhase
from mediaplane.devcluster.nodeagent.api import ApiError, Kube
from mediaplane.devcluster.nodeagent.node import NodeRegistration
from mediaplane.devcluster.nodeagent.orphans import kill_orphans
from mediaplane.devcluster.nodeagent.podspec import Pod, PodDir
from mediaplane.devcluster.nodeagent.runner import SHUTDOWN, PodRun, grace_seconds
from mediaplane.devcluster.nodeagent.status import NODE_RESTART_MESSAGE, failed_without_running
from mediaplane.devcluster.nodeagent.watch import watch_pods

log = logging.getLogger(__name__)

TERMINAL = (PodPhase.SUCCEEDED, PodPhase.FAILED)


def _describe(pod: Pod) -> str:
    meta = pod.get("metadata", {})
    return f"{meta.get('namespace')}/{meta.get('name')}"


class NodeAgent:
    def __init__(self, kube: Kube, node_name: str, pods_root: Path, process_path: str) -> None:
        self.kube = kube
        self.node_name = node_name
        self.pods_root = pods_root
        self.process_path = process_path
        self.registration = NodeRegistration(kube, node_name)
        self.runs: dict[str, PodRun] = {}
        self.seen: set[str] = set()  # uids this agent life has started or failed
        self.binding: set[str] = set()
        self.deleting: set[str] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.run_tasks: dict[str, asyncio.Task[None]] = {}

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        await self._retry_forever(self.registration.register, "registering the node")
        self._spawn(self.registration.heartbeat_forever(), "heartbeat")
        await self._retry_forever(self._fail_previous_life, "cleaning up after a previous agent")
        await watch_pods(self.kube, self.handle)

    async def shutdown(self, grace: float = 5.0) -> None:
        """Kill every pod process; the pods are failed (NodeRestart) by the next agent."""
        for run in list(self.runs.values()):
            run.kill(SHUTDOWN, None, grace)
        running = list(self.run_tasks.values())
        if running:
            await asyncio.wait(running, timeout=grace + 2)
        for task in list(self.tasks):
            task.cancel()
        kill_orphans(self.pods_root)

    async def _retry_forever(self, step: Any, what: str) -> None:
        while True:
            try:
                await step()
                return
            except Exception as err:
                log.warning("%s failed, retrying: %s", what, err)
                await asyncio.sleep(2)

    async def _fail_previous_life(self) -> None:
        """Adopt nothing: a non-terminal pod already on this node lost its processes."""
        kill_orphans(self.pods_root)
        pods, _ = await self.kube.list_pods()
        for pod in pods:
            if pod.get("spec", {}).get("nodeName") != self.node_name:
                continue
            if (pod.get("status") or {}).get("phase") in TERMINAL:
                continue
            self.seen.add(pod["metadata"]["uid"])
            log.info("%s: left over from a previous agent, failing it", _describe(pod))
            await self._fail(pod, "NodeRestart", NODE_RESTART_MESSAGE)
            if pod["metadata"].get("deletionTimestamp"):
                await self._delete_now(pod)

    # --- decisions ------------------------------------------------------------------------

    def handle(self, event: str, pod: Pod) -> None:
        try:
            self._handle(event, pod)
        except Exception:
            log.exception("%s: handling %s failed", _describe(pod), event)

    def _handle(self, event: str, pod: Pod) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        spec = pod.get("spec", {})
        phase = (pod.get("status") or {}).get("phase")
        run = self.runs.get(uid)
        if event == "DELETED":
            if run is not None:
                run.kill("Deleted", None, 0)
            return
        node = spec.get("nodeName")
        if not node:
            if (
                not meta.get("deletionTimestamp")
                and phase not in TERMINAL
                and uid not in self.binding
            ):
                self.binding.add(uid)
                self._spawn(self._bind(pod), f"binding {_describe(pod)}")
            return
        if node != self.node_name:
            return
        if meta.get("deletionTimestamp"):
            self._on_deletion(pod, run)
            return
        if run is not None:
            run.update(pod)
            return
        if phase in TERMINAL or uid in self.seen:
            return
        self.seen.add(uid)
        if phase == PodPhase.PENDING:
            self._start(pod)
        else:
            self._spawn(self._fail(pod, "NodeRestart", NODE_RESTART_MESSAGE), "failing")

    def _on_deletion(self, pod: Pod, run: PodRun | None) -> None:
        uid = pod["metadata"]["uid"]
        if run is not None:
            if not run.deleted:
                run.deleted = True
                run.kill("Deleted", None, grace_seconds(pod))
            return
        if uid in self.deleting:
            return
        self.deleting.add(uid)
        self.seen.add(uid)
        phase = (pod.get("status") or {}).get("phase")
        self._spawn(self._fail_and_delete(pod, phase in TERMINAL), f"deleting {_describe(pod)}")

    def _start(self, pod: Pod) -> None:
        run = PodRun(self.kube, pod, self.pods_root, self.process_path)
        self.runs[run.uid] = run
        log.info("%s: starting", run)
        task = self._spawn(run.run(), f"running {run}")
        self.run_tasks[run.uid] = task
        task.add_done_callback(lambda _: self._finished(run))

    def _finished(self, run: PodRun) -> None:
        self.runs.pop(run.uid, None)
        self.run_tasks.pop(run.uid, None)
        if run.deleted:
            self.deleting.add(run.uid)
            self._spawn(self._delete_now(run.pod), f"deleting {run}")

    # --- actions --------------------------------------------------------------------------

    async def _bind(self, pod: Pod) -> None:
        meta = pod["metadata"]
        try:
            for attempt in range(5):
                try:
                    await self.kube.bind(meta["namespace"], meta["name"], self.node_name)
                    log.info("%s: bound to %s", _describe(pod), self.node_name)
                    return
                except ApiError as err:
                    if err.status in (404, 409):
                        return
                    log.warning(
                        "%s: binding failed (attempt %d): %s", _describe(pod), attempt + 1, err
                    )
                await asyncio.sleep(1 + attempt)
        finally:
            self.binding.discard(meta["uid"])

    async def _fail(self, pod: Pod, reason: str, message: str) -> None:
        meta = pod["metadata"]
        try:
            await self.kube.patch_pod_status(
                meta["namespace"], meta["name"], failed_without_running(pod, reason, message)
            )
        except ApiError as err:
            if err.status != 404:
                raise

    async def _fail_and_delete(self, pod: Pod, terminal: bool) -> None:
        if not terminal:
            await self._fail(pod, "Deleted", "the pod was deleted before it ran")
        await self._delete_now(pod)

    async def _delete_now(self, pod: Pod) -> None:
        """The kubelet's last word on a deleted pod: remove it without further grace."""
        meta = pod["metadata"]
        try:
            await self.kube.delete_pod_now(meta["namespace"], meta["name"], meta["uid"])
            log.info("%s: deleted", _describe(pod))
        except ApiError as err:
            if err.status not in (404, 409):
                raise

    def _spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=what)
        self.tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", what, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    def pod_dir(self, pod: Pod) -> PodDir:
        return PodDir.for_pod(self.pods_root, pod)
