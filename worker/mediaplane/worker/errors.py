"""Failures that are not the input's fault.

They end the process non-zero so the Job controller retries the pod; the short text
becomes the pod's termination message. Verdicts about the input (quarantine) are results,
never errors.
"""

from __future__ import annotations

from mediaplane.core.tasks import EXIT_PROVIDER_REFUSED


class InfraError(Exception):
    """`code` is CamelCase like the quarantine reasons, so the operator can show both alike."""

    exit_code = 1

    def __init__(self, code: str, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


# Distinct exit codes make `kubectl get pods` and the Job's failure events readable.
EXIT_INTERNAL = 1
EXIT_INVALID_TASK = 2
EXIT_INPUT = 3
EXIT_UPLOAD = 4
EXIT_TRANSCODE = 5
# Generation: the service refused for good (a content policy: the Job is not retried), or
# did not answer (retried by the Job).
EXIT_REFUSED = EXIT_PROVIDER_REFUSED
EXIT_PROVIDER = 7
EXIT_TERMINATED = 143
