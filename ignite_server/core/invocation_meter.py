"""Metering one invocation: what it cost and how it ended, told once.

A meter is opened when the activator takes an invocation and closed however
the invocation ends (answered, failed, timed out, cut off by its consumer).
On the way it hears when a pod slot was taken (the cold start is the wait
for it, traced as ``ignite.activation``), when the request goes to the pod
(``ignite.pod.request``, whose context travels in the request's headers),
and how long the platform waited on the pod; it makes the trailer the caller
gets. When it closes it ends both spans and records the invocation's metrics
(observability/metrics.py): the outcome, the duration, the cold start, and
the platform's own share (the duration minus the waits for and on the pod).
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from types import TracebackType

from ignite_server.domain.errors import DeadlineExceeded, IgniteError
from ignite_server.domain.models import ResponseTrailer, RunTarget
from ignite_server.observability import metrics, tracing
from ignite_server.ports.pod_backend import Pod, PodStats

#: The outcome of an invocation that ended before its answer was complete
#: and without an error of its own: its consumer went away.
CUT_OFF = "cancelled"


def failure_outcome(err: IgniteError) -> str:
    """The metrics outcome of an invocation that got no complete answer."""
    if isinstance(err, DeadlineExceeded):
        return "timeout"
    if err.reason == "QUEUE_FULL":
        return "queue_full"
    if err.reason in ("CAPACITY", "QUOTA_EXCEEDED"):
        return "no_capacity"
    if err.reason in ("OUT_OF_MEMORY", "POD_EXITED", "POD_CONNECTION_LOST"):
        return "pod_failure"
    return "unavailable"


class InvocationMeter:
    """The measurements of one invocation; a context manager that records
    them when the invocation ends."""

    __slots__ = (
        "_activation",
        "_app",
        "_cold",
        "_cpu_before",
        "_execution_id",
        "_outcome",
        "_pod_request",
        "_started",
        "_version",
        "body_bytes",
        "cold_start_s",
        "pod_s",
        "status",
    )

    def __init__(self, target: RunTarget, execution_id: str, *, cold: bool) -> None:
        self._app = target.app.id
        self._version = target.version.version
        self._execution_id = execution_id
        self._started = time.monotonic()
        self._cold = cold
        #: Until the answer is complete or its failure known.
        self._outcome = CUT_OFF
        # Pods started while a cold invocation waits are traced under it.
        self._activation = (
            tracing.begin("ignite.activation", {tracing.APP: self._app}, attach=True)
            if cold
            else None
        )
        self._pod_request: tracing.Handle | None = None
        self._cpu_before = 0
        #: How long it waited for a pod slot, when none was ready (cold).
        self.cold_start_s: float | None = None
        #: How long the platform waited on the pod (its answer, its body).
        self.pod_s = 0.0
        self.status = 0
        self.body_bytes = 0

    def __enter__(self) -> InvocationMeter:
        return self

    def slot_taken(self, pod: Pod) -> None:
        """A slot on ``pod`` was taken: the cold start, if any, is over."""
        if self._cold:
            tracing.end(self._activation)
            self._activation = None
            self.cold_start_s = time.monotonic() - self._started
        self._cpu_before = pod.stats().cpu_used_ms

    def sending(self, headers: MutableMapping[str, str]) -> None:
        """The request is about to go to the pod with ``headers``, which
        carry the trace on."""
        self._pod_request = tracing.begin(
            "ignite.pod.request",
            {tracing.APP: self._app, tracing.EXECUTION_ID: self._execution_id},
            client=True,
        )
        tracing.inject_from(self._pod_request, headers)

    def answered(self, status: int, seconds: float) -> None:
        """The pod answered with ``status`` after ``seconds``."""
        self.status = status
        self.pod_s += seconds

    def waited_on_pod(self, seconds: float, body_bytes: int = 0) -> None:
        """The platform waited ``seconds`` for the pod (and got ``body_bytes``)."""
        self.pod_s += seconds
        self.body_bytes += body_bytes

    def trailer(self, usage: PodStats) -> ResponseTrailer:
        """The answer is complete: its trailer, with what the pod used."""
        self._outcome = ""
        cold_start_ms = int(self.cold_start_s * 1000) if self.cold_start_s is not None else 0
        return ResponseTrailer(
            total_body_bytes=self.body_bytes,
            duration_ms=int((time.monotonic() - self._started) * 1000),
            cold_start_ms=cold_start_ms,
            cpu_used_ms=max(0, usage.cpu_used_ms - self._cpu_before),
            memory_used_mb=usage.memory_peak_mb,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, IgniteError):
            self._outcome = failure_outcome(exc)
        outcome = self._outcome
        tracing.end(self._activation, error=outcome)
        tracing.end(
            self._pod_request,
            error=outcome,
            **({"http.response.status_code": self.status} if self.status else {}),
        )
        metrics.record_invocation(
            self._app,
            self._version,
            outcome or metrics.outcome_of_status(self.status),
            time.monotonic() - self._started,
            cold_start_s=self.cold_start_s,
            pod_s=self.pod_s,
        )
