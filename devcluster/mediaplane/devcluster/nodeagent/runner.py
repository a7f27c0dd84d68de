"""One pod's life on the local node: prepare its directory, run its processes, report.

A pod run is a single coroutine so that its status reports are strictly ordered
(Pending -> Running -> terminal) and a terminal report is never followed by another.
Deletion and the active deadline interrupt it through `kill()`, which signals the
process groups; the coroutine then reports the outcome as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediaplane.core.states import PodPhase
from mediaplane.devcluster.nodeagent.api import ApiError, Kube
from mediaplane.devcluster.nodeagent.podspec import (
    Container,
    MissingReferenceError,
    Pod,
    PodDir,
    PodSpecError,
    Ref,
    container_argv,
    container_env,
    cpu_nice,
    object_data,
    path_map,
    process_env,
    references,
    token_requests,
    volume_files,
    volume_hosts,
    working_dir,
)
from mediaplane.devcluster.nodeagent.status import (
    DEADLINE_MESSAGE,
    MAX_TERMINATION_MESSAGE,
    ContainerState,
    exit_code,
    failed_without_running,
    now,
    outcome,
    pod_status,
    states_for,
)
from mediaplane.devcluster.processes import (
    group_nice,
    kill_group,
    pdeathsig_preexec,
    set_group_nice,
)

log = logging.getLogger(__name__)

REFERENCE_WAIT_SECONDS = 60.0
MAX_GRACE_SECONDS = 30.0
DEFAULT_GRACE_SECONDS = 30.0
# Tries, 100 ms apart, at setting a pod's CPU weight the kernel refused for now (`_weigh`).
WEIGH_ATTEMPTS = 50
# Volumes the ServiceAccount admission plugin adds to every pod; a local process never
# needs them, so failing to fill one in must not fail the pod.
AUTO_VOLUME_PREFIX = "kube-api-access-"
SHUTDOWN = "AgentShutdown"


def write_whole(path: Path, text: str) -> None:
    """Writes a small state file (a container's pid, its exit code) so that a reader polling
    for it (a test, a user's script) sees it absent or whole, never created and still empty."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    termination_file: Path
    message_policy: str
    # The CPU weight its CPU request buys (`podspec.cpu_nice`).
    nice: int = 0


def read_termination_message(plan: ContainerPlan, log_path: Path, code: int) -> str:
    """The termination message file, capped; the log tail under FallbackToLogsOnError."""
    try:
        with plan.termination_file.open("rb") as fh:
            message = fh.read(MAX_TERMINATION_MESSAGE).decode(errors="replace")
    except OSError:
        message = ""
    if not message.strip() and code != 0 and plan.message_policy == "FallbackToLogsOnError":
        try:
            with log_path.open("rb") as fh:
                data = fh.read()[-2048:]
            message = "\n".join(data.decode(errors="replace").splitlines()[-80:])
        except OSError:
            message = ""
    return message


def grace_seconds(pod: Pod) -> float:
    meta_grace = pod.get("metadata", {}).get("deletionGracePeriodSeconds")
    spec_grace = pod.get("spec", {}).get("terminationGracePeriodSeconds")
    grace = meta_grace if meta_grace is not None else spec_grace
    return min(float(DEFAULT_GRACE_SECONDS if grace is None else grace), MAX_GRACE_SECONDS)


class PodRun:
    """Runs one pod to a terminal phase; `kill()` cuts it short."""

    def __init__(self, kube: Kube, pod: Pod, pods_root: Path, process_path: str) -> None:
        self.kube = kube
        self.pod = pod
        self.dir = PodDir.for_pod(pods_root, pod)
        self.process_path = process_path
        self.init, self.main = states_for(pod)
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.start_time = now()
        self.kill_reason: str | None = None
        self.kill_message: str | None = None
        self.deleted = False
        self._kill_tasks: set[asyncio.Task[None]] = set()
        self._weigh_tasks: set[asyncio.Task[None]] = set()
        self._deadline: asyncio.Task[None] | None = None
        self._deadline_seconds: int | None = None
        self._armed = False
        self._started_wall = time.time()

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    # --- interruption ---------------------------------------------------------------------

    def kill(self, reason: str, message: str | None, grace: float) -> None:
        """Stop every process of the pod: SIGTERM to each group, SIGKILL after `grace`."""
        if self.kill_reason is None:
            self.kill_reason = reason
            self.kill_message = message
        log.info("%s: killing (%s, grace %.0fs)", self, reason, grace)
        task = asyncio.create_task(self._kill(grace))
        self._kill_tasks.add(task)
        task.add_done_callback(self._kill_tasks.discard)

    async def _kill(self, grace: float) -> None:
        running = [p for p in self.procs.values() if p.returncode is None]
        for proc in running:
            kill_group(proc.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        if grace <= 0 or not running:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), grace)
        for proc in running:
            if proc.returncode is None:
                kill_group(proc.pid, signal.SIGKILL)

    def update(self, pod: Pod) -> None:
        """Track spec changes that matter while running: the active deadline."""
        self.pod = pod
        deadline = pod.get("spec", {}).get("activeDeadlineSeconds")
        if self._armed and deadline != self._deadline_seconds:
            self._arm_deadline(deadline)

    def _arm_deadline(self, seconds: int | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._deadline_seconds = seconds
        if seconds is not None:
            self._deadline = asyncio.create_task(self._deadline_after(float(seconds)))

    async def _deadline_after(self, seconds: float) -> None:
        remaining = seconds - (time.time() - self._started_wall)
        await asyncio.sleep(max(0.0, remaining))
        self.kill("DeadlineExceeded", DEADLINE_MESSAGE, grace_seconds(self.pod))

    # --- the run --------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the pod; whatever goes wrong ends in a terminal status, not a stuck pod."""
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.exception("%s: the agent failed running the pod", self)
            for proc in self.procs.values():
                if proc.returncode is None:
                    kill_group(proc.pid, signal.SIGKILL)
            message = f"the dev node agent failed to run the pod: {err}"
            await self.report(failed_without_running(self.pod, "NodeAgentError", message, code=128))

    async def _run(self) -> None:
        try:
            plans = await self._prepare()
        except PodSpecError as err:
            log.warning("%s: cannot run: %s", self, err)
            await self.report(
                failed_without_running(
                    self.pod, err.reason, str(err), code=128, container_reason=err.reason
                )
            )
            return
        self._armed = True
        self._arm_deadline(self.pod.get("spec", {}).get("activeDeadlineSeconds"))
        try:
            await self._run_containers(plans)
        finally:
            if self._deadline is not None:
                self._deadline.cancel()
            for proc in self.procs.values():
                if proc.returncode is None:
                    kill_group(proc.pid, signal.SIGKILL)

    async def _run_containers(self, plans: dict[str, ContainerPlan]) -> None:
        if self.init:
            # Pending while the init containers run. A pod without them is not held up by
            # a status write before its start (a kubelet's status manager does not block
            # containers either): its next report, Running, follows at once.
            await self.report(self._status(PodPhase.PENDING))
        for state in self.init:
            if self.kill_reason:
                break
            proc = await self._start(state, plans[state.name])
            await self.report(self._status(PodPhase.PENDING))
            if proc is not None:
                await self._wait(state, plans[state.name], proc)
            if state.exit_code != 0:
                break
        if all(s.exit_code == 0 for s in self.init) and not self.kill_reason:
            started = [(s, await self._start(s, plans[s.name])) for s in self.main]
            await self.report(self._status(PodPhase.RUNNING))
            await asyncio.gather(
                *(self._wait(s, plans[s.name], p) for s, p in started if p is not None)
            )
        if self.kill_reason == SHUTDOWN:
            return  # the next agent life reports these pods (NodeRestart)
        phase = PodPhase.FAILED if self.kill_reason else outcome(self.init, self.main)
        reason = "DeadlineExceeded" if self.kill_reason == "DeadlineExceeded" else None
        message = self.kill_message if self.kill_reason else None
        await self.report(self._status(phase, reason, message))
        log.info("%s: %s", self, phase)

    def _status(
        self, phase: str, reason: str | None = None, message: str | None = None
    ) -> dict[str, Any]:
        return pod_status(
            phase=phase,
            start_time=self.start_time,
            init=self.init,
            containers=self.main,
            reason=reason,
            message=message,
        )

    async def _start(
        self, state: ContainerState, plan: ContainerPlan
    ) -> asyncio.subprocess.Process | None:
        if self.kill_reason:
            return None
        plan.termination_file.touch()
        log_path = self.dir.log(state.name)
        with log_path.open("ab") as out:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *plan.argv,
                    env=plan.env,
                    cwd=plan.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=pdeathsig_preexec(nice=plan.nice),
                )
            except OSError as err:
                state.terminate(128, f"cannot start {plan.argv[0]!r}: {err}", reason="StartError")
                write_whole(self.dir.exit(state.name), f"{state.exit_code}\n")
                return None
        state.started_at = now()
        self.procs[state.name] = proc
        if plan.nice and group_nice(proc.pid) not in (None, plan.nice):
            task = asyncio.create_task(self._weigh(proc, plan.nice))
            self._weigh_tasks.add(task)
            task.add_done_callback(self._weigh_tasks.discard)
        write_whole(self.dir.pid(state.name), f"{proc.pid}\n")
        log.info("%s: container %s started, pid %d", self, state.name, proc.pid)
        if self.kill_reason:  # a kill that raced the start
            kill_group(proc.pid, signal.SIGKILL)
        return proc

    async def _weigh(self, proc: asyncio.subprocess.Process, nice: int) -> None:
        """Sets the session group's nice value the child could not set itself: without
        CAP_SYS_ADMIN the kernel takes one such change per 100 ms on the machine, so pods
        that start together take turns."""
        for _ in range(WEIGH_ATTEMPTS):
            await asyncio.sleep(0.1)
            if proc.returncode is not None or set_group_nice(proc.pid, nice):
                return
        log.warning("%s: could not lower the CPU weight of pid %d", self, proc.pid)

    async def _wait(
        self, state: ContainerState, plan: ContainerPlan, proc: asyncio.subprocess.Process
    ) -> None:
        returncode = await proc.wait()
        # A container's processes do not outlive its main process.
        kill_group(proc.pid, signal.SIGKILL)
        code = exit_code(returncode)
        state.terminate(code, read_termination_message(plan, self.dir.log(state.name), code))
        write_whole(self.dir.exit(state.name), f"{code}\n")
        log.info("%s: container %s exited %d", self, state.name, code)

    # --- preparation ----------------------------------------------------------------------

    async def _prepare(self) -> dict[str, ContainerPlan]:
        """Resolve references (waiting, as a kubelet does, for ones not there yet)."""
        self._fresh_dir()
        deadline = time.monotonic() + REFERENCE_WAIT_SECONDS
        while True:
            try:
                refs = await self._fetch_references()
                tokens = await self._fetch_tokens()
                self._write_volumes(refs, tokens)
                return self._plans(refs)
            except MissingReferenceError as err:
                if time.monotonic() > deadline or self.kill_reason:
                    raise
                log.info("%s: waiting: %s", self, err)
                await asyncio.sleep(2)

    def _fresh_dir(self) -> None:
        """A pod dir left by an earlier pod of the same name is replaced."""
        marker = self.dir.root / ".uid"
        if self.dir.root.exists() and (not marker.exists() or marker.read_text() != self.uid):
            shutil.rmtree(self.dir.root, ignore_errors=True)
        self.dir.root.mkdir(parents=True, exist_ok=True)
        marker.write_text(self.uid)
        self.dir.home.mkdir(exist_ok=True)

    async def _fetch_references(self) -> dict[Ref, dict[str, bytes] | None]:
        refs: dict[Ref, dict[str, bytes] | None] = {}
        for kind, name in sorted(references(self.pod)):
            obj = await self.kube.read(kind, self.namespace, name)
            refs[(kind, name)] = object_data(kind, obj) if obj is not None else None
        return refs

    async def _fetch_tokens(self) -> dict[str, dict[str, str]]:
        """Service-account tokens per volume, as projected volumes ask for them."""
        tokens: dict[str, dict[str, str]] = {}
        service_account = self.pod.get("spec", {}).get("serviceAccountName") or "default"
        for volume in self.pod.get("spec", {}).get("volumes") or []:
            for req in token_requests(volume):
                try:
                    token = await self.kube.request_token(
                        self.namespace,
                        service_account,
                        self.pod,
                        req.get("audience"),
                        req.get("expirationSeconds"),
                    )
                except ApiError as err:
                    log.info("%s: no token for volume %s: %s", self, volume["name"], err)
                    continue
                tokens.setdefault(volume["name"], {})[req["path"]] = token
        return tokens

    def _write_volumes(
        self, refs: dict[Ref, dict[str, bytes] | None], tokens: dict[str, dict[str, str]]
    ) -> None:
        for volume in self.pod.get("spec", {}).get("volumes") or []:
            name = volume["name"]
            if "hostPath" in volume:
                if volume["hostPath"].get("type") == "DirectoryOrCreate":
                    Path(volume["hostPath"]["path"]).mkdir(parents=True, exist_ok=True)
                continue
            target = self.dir.volume(name)
            target.mkdir(parents=True, exist_ok=True)
            if "emptyDir" in volume:
                continue
            try:
                files = volume_files(volume, self.pod, refs, tokens.get(name, {}))
            except PodSpecError as err:
                if name.startswith(AUTO_VOLUME_PREFIX):
                    log.info("%s: leaving %s incomplete: %s", self, name, err)
                    continue
                raise
            for relative, data in files.items():
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)

    def _plans(self, refs: dict[Ref, dict[str, bytes] | None]) -> dict[str, ContainerPlan]:
        spec = self.pod.get("spec", {})
        volumes = volume_hosts(self.pod, self.dir)
        plans: dict[str, ContainerPlan] = {}
        containers: list[Container] = (spec.get("initContainers") or []) + (
            spec.get("containers") or []
        )
        for container in containers:
            name = container["name"]
            env = container_env(self.pod, container, refs)
            termination = self.dir.termination_message(name)
            mapping = path_map(container, volumes, termination, env)
            for host in mapping.values():
                if host != termination and str(host).startswith(str(self.dir.root)):
                    host.mkdir(parents=True, exist_ok=True)
            cwd = working_dir(container, mapping, self.dir.home)
            if not cwd.is_dir():
                raise PodSpecError(
                    f"container {name!r}: workingDir {container.get('workingDir')!r} does not "
                    f"exist on this host (the dev node agent runs commands on the host)"
                )
            plans[name] = ContainerPlan(
                name=name,
                argv=container_argv(container, env, mapping),
                env=process_env(env, mapping, path=self.process_path, home=self.dir.home),
                cwd=cwd,
                termination_file=termination,
                message_policy=container.get("terminationMessagePolicy") or "File",
                nice=cpu_nice(container),
            )
        return plans

    # --- reporting ------------------------------------------------------------------------

    async def report(self, patch: dict[str, Any], attempts: int = 8) -> bool:
        """Patch pods/status, retrying transient failures; False if the pod is gone."""
        delay = 0.5
        for attempt in range(attempts):
            try:
                await self.kube.patch_pod_status(self.namespace, self.name, patch)
                return True
            except ApiError as err:
                if err.status == 404:
                    return False
                if err.status in (400, 422):
                    log.error("%s: status rejected: %s", self, err)
                    return False
                log.warning("%s: status update failed (attempt %d): %s", self, attempt + 1, err)
            except Exception as err:
                log.warning("%s: status update failed (attempt %d): %s", self, attempt + 1, err)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        return False
