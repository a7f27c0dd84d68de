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
# 6: final, a retry cannot succeed (the Jobs' podFailurePolicy fails them at once): the
# speech is not in the requested language and cannot be translated into it, or an image
# service refused for good (a content policy).
EXIT_LANGUAGE = EXIT_PROVIDER_REFUSED
EXIT_REFUSED = EXIT_PROVIDER_REFUSED
# Generation: the service did not answer (retried by the Job).
EXIT_PROVIDER = 7
EXIT_TERMINATED = 143
