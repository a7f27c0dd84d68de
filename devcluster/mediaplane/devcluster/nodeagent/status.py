"""Pod status documents, shaped as a kubelet writes them, for `pods/status` patches.

The Job controller reads exactly these fields (phase, containerStatuses[].state,
conditions) to count successes and failures; `kubectl` and the operator read the
termination message from `state.terminated.message`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mediaplane.core.states import PodPhase
from mediaplane.devcluster.nodeagent.podspec import LOCAL_IP, Pod

MAX_TERMINATION_MESSAGE = 4096
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
NODE_RESTART_MESSAGE = "the dev node agent restarted; the pod's processes are gone"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def exit_code(returncode: int) -> int:
    """asyncio/subprocess report a signal as -N; a container runtime reports 128+N."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class ContainerState:
    """What the agent knows about one container, turned into a ContainerStatus."""

    name: str
    image: str
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str = ""
    waiting_reason: str = "PodInitializing"

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.exit_code is None

    @property
    def terminated(self) -> bool:
        return self.exit_code is not None

    def terminate(self, code: int, message: str = "", reason: str | None = None) -> None:
        self.exit_code = code
        self.finished_at = now()
        self.started_at = self.started_at or self.finished_at
        self.reason = reason or ("Completed" if code == 0 else "Error")
        self.message = message[:MAX_TERMINATION_MESSAGE]

    def to_status(self) -> dict[str, Any]:
        state: dict[str, Any]
        if self.exit_code is not None:
            terminated: dict[str, Any] = {
                "exitCode": self.exit_code,
                "reason": self.reason,
                "startedAt": self.started_at,
                "finishedAt": self.finished_at,
            }
            if self.message:
                terminated["message"] = self.message
            state = {"terminated": terminated}
        elif self.started_at is not None:
            state = {"running": {"startedAt": self.started_at}}
        else:
            state = {"waiting": {"reason": self.waiting_reason}}
        return {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "containerID": f"mediaplane-local://{self.name}",
            "ready": self.running,
            "started": self.running,
            "restartCount": 0,
            "state": state,
        }


def _condition(kind: str, ok: bool, reason: str | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastTransitionTime": now(),
        "lastProbeTime": None,
    }
    if reason:
        condition["reason"] = reason
    return condition


def pod_status(
    *,
    phase: str,
    start_time: str,
    init: list[ContainerState],
    containers: list[ContainerState],
    reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """A `{"status": ...}` patch body for the pod's whole observable state."""
    terminal = PodPhase(phase).terminal
    initialized = all(c.terminated for c in init) and (not terminal or bool(containers))
    ready = not terminal and all(c.running for c in containers)
    not_ready = "PodCompleted" if terminal else "ContainersNotReady"
    status: dict[str, Any] = {
        "phase": phase,
        "startTime": start_time,
        "hostIP": LOCAL_IP,
        "hostIPs": [{"ip": LOCAL_IP}],
        "podIP": LOCAL_IP,
        "podIPs": [{"ip": LOCAL_IP}],
        "conditions": [
            _condition("PodReadyToStartContainers", not terminal),
            _condition("PodScheduled", True),
            _condition(
                "Initialized", initialized, None if initialized else "ContainersNotInitialized"
            ),
            _condition("ContainersReady", ready, None if ready else not_ready),
            _condition("Ready", ready, None if ready else not_ready),
        ],
        "containerStatuses": [c.to_status() for c in containers],
        "reason": reason,
        "message": message,
    }
    if init:
        status["initContainerStatuses"] = [c.to_status() for c in init]
    return {"status": status}


def outcome(init: list[ContainerState], containers: list[ContainerState]) -> str:
    """Succeeded only when every container that had to run exited 0 (restartPolicy Never)."""
    everything = init + containers
    if all(c.exit_code == 0 for c in everything):
        return PodPhase.SUCCEEDED
    return PodPhase.FAILED


def states_for(pod: Pod) -> tuple[list[ContainerState], list[ContainerState]]:
    spec = pod.get("spec", {})
    init = [ContainerState(c["name"], c.get("image", "")) for c in spec.get("initContainers") or []]
    main = [ContainerState(c["name"], c.get("image", "")) for c in spec.get("containers") or []]
    return init, main


def failed_without_running(
    pod: Pod, reason: str, message: str, code: int = 137, container_reason: str | None = None
) -> dict[str, Any]:
    """Fail a pod whose processes never ran or are gone (node restart, bad spec, deletion)."""
    init, main = states_for(pod)
    for state in init + main:
        state.terminate(code, reason=container_reason or "ContainerStatusUnknown")
        state.message = message[:MAX_TERMINATION_MESSAGE]
    start = (pod.get("status") or {}).get("startTime") or now()
    return pod_status(
        phase=PodPhase.FAILED, start_time=start, init=init, containers=main, reason=reason,
        message=message,
    )
