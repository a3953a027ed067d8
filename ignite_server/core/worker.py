"""Workers that run stored executions.

Each worker task loops: claim one runnable execution under a lease of its
own (``<process>/<n>``), run it through core/invocations.py while a heartbeat
extends the lease, then record the outcome only if it still holds the lease.
Idle workers sleep until a NOTIFY announces new work (or POLL_SECS pass).

Outcomes (docs/executions.md):

| what happened | status | error_class | retried |
| --- | --- | --- | --- |
| the handler answered 1xx-3xx | COMPLETED | | |
| the handler answered 4xx | FAILED | client | no |
| the handler answered 5xx (an exception, an `Err`) | FAILED | user_code | yes |
| it ran past `timeout_secs` | TIMEOUT | user_code | no |
| the pod died, or no pod could start | FAILED | platform | yes |
| the app or its version is gone | FAILED | client | no |
| a caller cancelled it | CANCELLED | | |

A retried execution goes back to PENDING after RETRY_BACKOFF_SECS * 2^(n-1)
until MAX_ATTEMPTS attempts have been made. A worker or a whole server that
dies leaves RUNNING rows whose lease runs out; any worker then claims them
again (an attempt), so every accepted execution reaches a terminal state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from ignite_server.core.apps import stored_app
from ignite_server.core.executions import retention_ms
from ignite_server.core.invocations import Invocations
from ignite_server.domain.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    IgniteError,
    InvalidArgument,
    NotFound,
)
from ignite_server.domain.models import (
    ClaimedExecution,
    ExecutionMetrics,
    ExecutionStatus,
    ResponseChunk,
    ResponseHead,
    ResponseTrailer,
)
from ignite_server.observability import metrics as platform_metrics
from ignite_server.observability import tracing
from ignite_server.ports.app_store import AppStore
from ignite_server.ports.execution_store import WORK_CHANNEL, ExecutionStore

log = structlog.get_logger(__name__)

#: Attempts an execution gets before it ends FAILED (documented).
MAX_ATTEMPTS = 3
#: Back-off before the first retry; doubles with every further attempt.
RETRY_BACKOFF_SECS = 0.5
#: A lease lasts this long without a heartbeat; a dead worker's executions
#: are taken over after it (documented).
DEFAULT_LEASE_SECS = 30.0
#: Idle workers look for work at least this often, notifications or not.
POLL_SECS = 1.0
#: The largest result stored with an execution (larger ones fail the
#: execution with user_code rather than bloat the database).
MAX_RESULT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class _Outcome:
    status: ExecutionStatus
    result: bytes = b""
    status_code: int = 0
    error: str = ""
    error_class: str = ""
    retry: bool = False
    function_version: int = 0
    execution_ms: int = 0
    cold_start_ms: int = 0
    cpu_used_ms: int = 0
    memory_used_mb: int = 0
    #: How long the record is kept after completion (the app's StorageMode).
    retention_ms: int | None = None


def answer_outcome(status_code: int) -> tuple[ExecutionStatus, str, bool]:
    """(status, error_class, retried) of an execution the handler answered,
    by its HTTP status (the table in the module docstring)."""
    if status_code >= 500:
        return ExecutionStatus.FAILED, "user_code", True
    if status_code >= 400:
        return ExecutionStatus.FAILED, "client", False
    return ExecutionStatus.COMPLETED, "", False


def failure_outcome(err: IgniteError) -> tuple[ExecutionStatus, str, bool]:
    """(status, error_class, retried) of an execution that got no answer."""
    if isinstance(err, DeadlineExceeded):
        return ExecutionStatus.TIMEOUT, "user_code", False
    if isinstance(err, (NotFound, FailedPrecondition, InvalidArgument)):
        # The app or its version is gone, or cannot run: retrying won't help.
        return ExecutionStatus.FAILED, "client", False
    return ExecutionStatus.FAILED, "platform", True


def _handler_error(body: bytes) -> str:
    """The message of a runtime's `{"error": "..."}` answer, or the body."""
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(body).get("error")
        if isinstance(message, str):
            return message
    return body[:2000].decode(errors="replace")


class ExecutionWorkers:
    """A pool of worker tasks in this server process."""

    def __init__(
        self,
        store: ExecutionStore,
        apps: AppStore,
        invocations: Invocations,
        wait_for_news: Callable[[str, float], Awaitable[None]],
        *,
        workers: int = 4,
        lease_secs: float = DEFAULT_LEASE_SECS,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._store = store
        self._apps = apps
        self._invocations = invocations
        self._wait = wait_for_news
        self._count = workers
        self._lease_ms = int(lease_secs * 1000)
        self._max_attempts = max_attempts
        self._process = f"{socket.gethostname()}:{os.getpid()}:{time.monotonic_ns() % 10**6}"
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(n), name=f"execution-worker-{n}")
            for n in range(self._count)
        ]
        self._tasks.append(asyncio.create_task(self._sweep(), name="execution-sweeper"))

    async def close(self) -> None:
        """Stop claiming; executions in flight are abandoned to their leases,
        which another worker (or this server after a restart) takes over."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _now_ms(self) -> int:
        return int(time.time() * 1000)

    async def _sweep(self) -> None:
        while True:
            try:
                failed = await self._store.fail_exhausted(self._now_ms(), self._max_attempts)
                if failed:
                    log.warning("executions.lease_exhausted", count=failed)
                deleted = await self._store.delete_expired(self._now_ms())
                if deleted:
                    log.info("executions.expired", count=deleted)
            except Exception:
                log.exception("executions.sweep_failed")
            await asyncio.sleep(min(self._lease_ms / 1000, 10.0))

    async def _work(self, n: int) -> None:
        owner = f"{self._process}/{n}"
        while True:
            try:
                claimed = await self._store.claim(
                    owner, 1, self._lease_ms, self._now_ms(), self._max_attempts
                )
            except Exception:
                log.exception("executions.claim_failed")
                await asyncio.sleep(POLL_SECS)
                continue
            if not claimed:
                await self._wait(WORK_CHANNEL, POLL_SECS)
                continue
            try:
                await self._run(owner, claimed[0])
            except Exception:
                # The database hiccuped mid-run: the lease lapses and the
                # execution is taken over; this worker carries on.
                log.exception("execution.worker_error", execution_id=claimed[0].execution.id)
                await asyncio.sleep(POLL_SECS)

    async def _run(self, owner: str, claimed: ClaimedExecution) -> None:
        execution = claimed.execution
        if execution.attempts == 1:
            platform_metrics.observe(
                platform_metrics.EXECUTION_QUEUE_AGE,
                max(0, self._now_ms() - execution.created_at_ms) / 1000,
            )
        bound = log.bind(
            execution_id=execution.id, app=execution.app_id, attempt=execution.attempts
        )
        runner_task = asyncio.create_task(self._attempt(claimed))
        cancelled = False
        interval = max(self._lease_ms / 3000, 0.05)
        while not runner_task.done():
            await asyncio.wait({runner_task}, timeout=min(interval, 1.0))
            if runner_task.done():
                break
            held, cancel = await self._store.heartbeat(
                owner, [execution.id], self._lease_ms, self._now_ms()
            )
            if execution.id in cancel or execution.id not in held:
                # Cancelled by a caller, or our lease went to another worker:
                # stop the work in the pod either way.
                cancelled = execution.id in cancel
                runner_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner_task
                if execution.id not in held:
                    bound.warning("execution.lease_lost")
                    return
                break
        now = self._now_ms()
        if cancelled:
            app = await stored_app(self._apps, execution.organization, execution.app)
            outcome = _Outcome(
                ExecutionStatus.CANCELLED,
                error="cancelled by a caller",
                retention_ms=retention_ms(app) if app else None,
            )
        else:
            outcome = runner_task.result()
        if outcome.retry and execution.attempts < self._max_attempts:
            backoff = RETRY_BACKOFF_SECS * 2 ** (execution.attempts - 1)
            if await self._store.retry(
                owner, execution.id, outcome.error, outcome.error_class, now + int(backoff * 1000)
            ):
                bound.info("execution.retry", error_class=outcome.error_class, backoff_secs=backoff)
                platform_metrics.count(
                    platform_metrics.EXECUTION_RETRIES, outcome.error_class or "none"
                )
                return
        metrics = ExecutionMetrics(
            cold_start_ms=outcome.cold_start_ms,
            execution_ms=outcome.execution_ms,
            # Seed 001: billed = execution, plus init when cold.
            billed_duration_ms=outcome.execution_ms + outcome.cold_start_ms,
            cpu_used_ms=outcome.cpu_used_ms,
            memory_used_mb=outcome.memory_used_mb,
            result_size_bytes=len(outcome.result),
        )
        recorded = await self._store.finish(
            owner,
            execution.id,
            status=outcome.status,
            result=outcome.result,
            status_code=outcome.status_code,
            error=outcome.error,
            error_class=outcome.error_class,
            metrics=metrics,
            function_version=outcome.function_version,
            now_ms=now,
            retention_ms=outcome.retention_ms,
        )
        if recorded:
            platform_metrics.count(
                platform_metrics.EXECUTIONS_FINISHED,
                outcome.status.name,
                outcome.error_class or "none",
            )
            bound.info("execution.done", status=outcome.status.name, code=outcome.status_code)
        else:
            bound.warning("execution.completion_rejected", reason="lease lost")

    async def _attempt(self, claimed: ClaimedExecution) -> _Outcome:
        execution = claimed.execution
        # A task of its own: its invocation counts under the path "async".
        platform_metrics.INVOCATION_PATH.set("async")
        with tracing.span(
            "ignite.execution",
            {
                tracing.EXECUTION_ID: execution.id,
                tracing.APP: execution.app_id,
                "ignite.attempt": execution.attempts,
            },
        ):
            return await self._run_attempt(claimed)

    async def _run_attempt(self, claimed: ClaimedExecution) -> _Outcome:
        execution = claimed.execution
        started = time.monotonic()
        try:
            target = await self._invocations.resolve(
                execution.organization, execution.app, execution.requested_version
            )
        except (NotFound, FailedPrecondition, InvalidArgument) as err:
            status, error_class, retry = failure_outcome(err)
            return _Outcome(status, error=err.message, error_class=error_class, retry=retry)
        version = target.version.version
        keep = retention_ms(target.app)
        status_code = 0
        body = bytearray()
        trailer = ResponseTrailer(0, 0)
        try:
            async for frame in self._invocations.stream(target, claimed.request, execution.id):
                if isinstance(frame, ResponseHead):
                    status_code = frame.status_code
                elif isinstance(frame, ResponseChunk):
                    body += frame.data
                    if len(body) > MAX_RESULT_BYTES:
                        return _Outcome(
                            ExecutionStatus.FAILED,
                            error=f"the result is larger than {MAX_RESULT_BYTES} bytes",
                            error_class="user_code",
                            function_version=version,
                            retention_ms=keep,
                        )
                elif isinstance(frame, ResponseTrailer):
                    trailer = frame
        except IgniteError as err:
            status, error_class, retry = failure_outcome(err)
            timed_out = status == ExecutionStatus.TIMEOUT
            return _Outcome(
                status,
                error=err.message,
                error_class=error_class,
                retry=retry,
                function_version=version,
                execution_ms=int((time.monotonic() - started) * 1000) if timed_out else 0,
                retention_ms=keep,
            )
        # Time in the handler excludes waiting for a pod to start.
        elapsed = max(0, int((time.monotonic() - started) * 1000) - trailer.cold_start_ms)
        result = bytes(body)
        status, error_class, retry = answer_outcome(status_code)
        return _Outcome(
            status,
            result,
            status_code,
            _handler_error(result) if status_code >= 400 else "",
            error_class,
            retry=retry,
            function_version=version,
            execution_ms=elapsed,
            cold_start_ms=trailer.cold_start_ms,
            cpu_used_ms=trailer.cpu_used_ms,
            memory_used_mb=trailer.memory_used_mb,
            retention_ms=keep,
        )
