"""The platform's own lines in an app's log: one per invocation, and the
events a handler cannot print itself.

Like Lambda's START/END/REPORT lines and Cloud Run's request logs, every
invocation, synchronous or asynchronous, leaves one PLATFORM line under
its execution id, written when it ends::

    REQUEST POST /orders 200 12 ms version=3 execution=01J... cold_start=41 ms

and, before it, the events that explain it:

- ``COLD START`` when the request waited for a pod to start (how long);
- ``TIMEOUT`` when the handler ran past the app's ``timeout_secs`` (its pod
  is stopped);
- ``CANCELLED`` when the caller went away or the execution was cancelled;
- ``OUT OF MEMORY`` when the kernel killed the pod under the request;
- ``POD EXITED`` when the pod died under the request.

Pods that end on their own outside a request, or fail to start, are
reported by the activator through ``pod_event`` (core/revision_throttler.py).

A line costs one ``LogService.emit`` (a buffered append); nothing here
waits on the store.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass

from ignite_server.domain.errors import IgniteError
from ignite_server.domain.models import (
    InvocationRequest,
    ResponseFrame,
    ResponseHead,
    ResponseTrailer,
    RunTarget,
)

#: ``(app id, version, execution id, message)``: a PLATFORM line for the
#: app's log (LogService.platform_event, bound to an app id).
PlatformEvent = Callable[[str, int, str, str], None]

#: What a failed invocation's error reason says in the app's log.
FAILURE_EVENTS = {
    "EXECUTION_TIMEOUT": "TIMEOUT",
    "OUT_OF_MEMORY": "OUT OF MEMORY",
    "POD_EXITED": "POD EXITED",
    "POD_CONNECTION_LOST": "POD EXITED",
}


@dataclass
class _Outcome:
    status: int = 0
    duration_ms: int = 0
    cold_start_ms: int = 0
    failure: str = ""


async def logged(
    frames: AsyncGenerator[ResponseFrame, None],
    target: RunTarget,
    request: InvocationRequest,
    execution_id: str,
    event: PlatformEvent,
    clock: Callable[[], float],
) -> AsyncGenerator[ResponseFrame, None]:
    """``frames`` as they come, with the invocation's lines written to the
    app's log when it ends, however it ends."""
    app_id, version = target.app.id, target.version.version
    outcome = _Outcome()
    started = clock()
    try:
        # Closed with this generator: the pod's slot knows at once when a
        # consumer stops reading before the trailer.
        async with aclosing(frames) as inner:
            async for frame in inner:
                if isinstance(frame, ResponseHead):
                    outcome.status = frame.status_code
                elif isinstance(frame, ResponseTrailer):
                    outcome.duration_ms = frame.duration_ms
                    outcome.cold_start_ms = frame.cold_start_ms
                yield frame
    except IgniteError as err:
        outcome.failure = FAILURE_EVENTS.get(err.reason, "FAILED")
        event(app_id, version, execution_id, f"{outcome.failure}: {err.message}")
        raise
    except BaseException:
        # The caller went away or the execution was cancelled (a closed
        # generator, a cancelled task).
        if not outcome.duration_ms:
            outcome.failure = "CANCELLED"
            event(app_id, version, execution_id, "CANCELLED: the invocation was cut off")
        raise
    finally:
        if not outcome.duration_ms:
            outcome.duration_ms = int((clock() - started) * 1000)
        if outcome.cold_start_ms:
            event(
                app_id,
                version,
                execution_id,
                f"COLD START: waited {outcome.cold_start_ms} ms for a pod",
            )
        event(app_id, version, execution_id, request_line(request, version, execution_id, outcome))


def request_line(
    request: InvocationRequest, version: int, execution_id: str, outcome: _Outcome
) -> str:
    """The one line an invocation leaves (module docstring)."""
    status = str(outcome.status) if outcome.status else outcome.failure or "-"
    line = (
        f"REQUEST {request.method or 'POST'} {request.path or '/'} {status} "
        f"{outcome.duration_ms} ms version={version} execution={execution_id}"
    )
    if outcome.cold_start_ms:
        line += f" cold_start={outcome.cold_start_ms} ms"
    return line
