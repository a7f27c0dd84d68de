"""Typed views of the built-in objects the operator reads: batch Jobs and their pods.

Only the fields the operator uses; everything else of a Pod or Job is ignored. They parse
kopf's raw watch events and the API server's answers alike (camelCase JSON).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mediaplane.core import names
from mediaplane.core.resources import KubeObject, Resource
from mediaplane.core.states import ConditionStatus, PodPhase


class Terminated(Resource):
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class ContainerState(Resource):
    terminated: Terminated | None = None


class ContainerStatus(Resource):
    name: str | None = None
    state: ContainerState | None = None


class PodStatus(Resource):
    phase: PodPhase | None = None
    container_statuses: list[ContainerStatus] = Field(default_factory=list)


class Workload(KubeObject):
    """A Job or pod the operator made for a TranscodeJob (it carries its name as a label)."""

    @property
    def transcode_job(self) -> str | None:
        return self.metadata.labels.get(names.LABEL_TRANSCODE_JOB)

    def made_for(self, uid: str | None) -> bool:
        """Whether this was made for the TranscodeJob with this uid, and not for an earlier
        one of the same name (a workload from before the label existed is taken as ours)."""
        label = self.metadata.labels.get(names.LABEL_TRANSCODE_JOB_UID)
        return label is None or uid is None or label == uid


COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


class Pod(Workload):
    api_version: str = "v1"
    kind: str = "Pod"
    status: PodStatus = Field(default_factory=PodStatus)

    @property
    def terminated(self) -> Terminated | None:
        """The worker container's end, once it has ended."""
        for status in self.status.container_statuses:
            if status.state is not None and status.state.terminated is not None:
                return status.state.terminated
        return None

    @property
    def ended(self) -> bool:
        """Its worker will not run again (it may still be in the API until collected)."""
        return self.status.phase is not None and self.status.phase.terminal

    @property
    def succeeded(self) -> bool:
        terminated = self.terminated
        return (self.status.phase is PodPhase.SUCCEEDED and terminated is not None
                and terminated.exit_code == 0)

    @property
    def completion_index(self) -> int | None:
        """The index this pod runs in an Indexed Job (the Job controller's annotation)."""
        raw = self.metadata.annotations.get(COMPLETION_INDEX_ANNOTATION, "")
        return int(raw) if raw.isdigit() else None


class BatchCondition(StrEnum):
    """The batch Job controller's own condition types that the operator acts on."""

    COMPLETE = "Complete"
    FAILED = "Failed"


class JobConditionView(Resource):
    type: str
    status: ConditionStatus
    reason: str | None = None
    message: str | None = None


class JobStatus(Resource):
    conditions: list[JobConditionView] = Field(default_factory=list)
    active: int | None = None
    failed: int | None = None
    succeeded: int | None = None
    start_time: str | None = None
    completion_time: str | None = None


class Job(Workload):
    api_version: str = "batch/v1"
    kind: str = "Job"
    status: JobStatus = Field(default_factory=JobStatus)

    def condition(self, type_: BatchCondition) -> JobConditionView | None:
        """A condition that is True (`Complete`, `Failed`), else None."""
        return next((c for c in self.status.conditions
                     if c.type == type_ and c.status is ConditionStatus.TRUE), None)
