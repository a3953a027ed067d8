"""Workers that run stored executions.

One pool per server process, with ``workers`` slots (how many executions
run at once) and one lease owner (``<host>:<pid>:<n>``):

- The claimer leases as many runnable executions as there are free slots
  (up to CLAIM_BATCH) in one statement, and starts a task for each. While
  a claim is in flight, more slots free up, so a busy pool claims in
  batches; an idle one sleeps until a NOTIFY announces new work (or
  POLL_SECS pass); one that arrived during the claim wakes it at once.
- Fair shares: a claim takes executions round-robin across organizations
  (the oldest of each, then the second of each, …) and none of an
  organization that already runs ``per_org_limit`` executions on all
  servers, so one organization's backlog never holds every slot and
  another's single execution starts at the next free slot. An execution
  that ends (its end written) may free its organization's share, so the
  claimer looks again then rather than at the next poll.
- The lease keeper extends the leases of every running execution in one
  statement a few times per lease (at most a second apart). An execution a
  caller asked to cancel, or whose lease went to another worker, is stopped
  in its pod.
- A finished execution's end goes to the CompletionWriter
  (core/completions.py), which writes the ends of many executions in one
  statement, each only while the pool still holds its lease; its slot is
  free at once.

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
import functools
import json
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from ignite_server.core.apps import stored_app
from ignite_server.core.completions import CompletionWriter
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
from ignite_server.ports.execution_store import WORK_CHANNEL, ExecutionEnd, ExecutionStore

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
#: The most executions one claim leases (one statement, one round trip).
CLAIM_BATCH = 64
#: The largest result stored with an execution (larger ones fail the
#: execution with user_code rather than bloat the database).
MAX_RESULT_BYTES = 16 * 1024 * 1024


#: Why the lease keeper stopped an attempt.
_CANCELLED = "cancelled"
_LEASE_LOST = "lease lost"


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
    """A pool of execution slots in this server process."""

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
        per_org_limit: int | None = None,
    ) -> None:
        self._store = store
        self._apps = apps
        self._invocations = invocations
        self._wait = wait_for_news
        self._count = workers
        self._lease_ms = int(lease_secs * 1000)
        self._max_attempts = max_attempts
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{time.monotonic_ns() % 10**6}"
        self._per_org_limit = per_org_limit
        self._completions = CompletionWriter(store, self._owner, on_written=self._news_arrived)
        self._tasks: list[asyncio.Task[None]] = []
        #: Running executions by id: the task that runs one, and its attempt.
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._attempts: dict[str, asyncio.Task[_Outcome]] = {}
        #: Why the lease keeper stopped an attempt (cancelled, or lease lost).
        self._stops: dict[str, str] = {}
        self._room = asyncio.Event()
        self._news = asyncio.Event()

    async def start(self) -> None:
        self._completions.start()
        if self._count > 0:
            self._tasks = [
                asyncio.create_task(self._claim_loop(), name="execution-claimer"),
                asyncio.create_task(self._listen(), name="execution-news"),
                asyncio.create_task(self._keep_leases(), name="execution-leases"),
            ]
        self._tasks.append(asyncio.create_task(self._sweep(), name="execution-sweeper"))

    async def close(self) -> None:
        """Stop claiming; executions in flight are abandoned to their leases,
        which another worker (or this server after a restart) takes over.
        Ends already handed to the writer are written."""
        tasks = [*self._tasks, *self._runs.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._completions.close()

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

    async def _claim_loop(self) -> None:
        while True:
            free = self._count - len(self._runs)
            if free <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            wanted = min(free, CLAIM_BATCH)
            # Work submitted from here on is either seen by this claim or
            # announced by a notification that sets the event again.
            self._news.clear()
            try:
                claimed = await self._store.claim(
                    self._owner,
                    wanted,
                    self._lease_ms,
                    self._now_ms(),
                    self._max_attempts,
                    self._per_org_limit,
                )
            except Exception:
                log.exception("executions.claim_failed")
                await asyncio.sleep(POLL_SECS)
                continue
            for one in claimed:
                execution_id = one.execution.id
                task = asyncio.create_task(self._run(one), name=f"execution-{execution_id}")
                self._runs[execution_id] = task
                task.add_done_callback(functools.partial(self._release, execution_id))
            if len(claimed) < wanted:
                # Nothing more was runnable: sleep unless news came meanwhile.
                await self._news.wait()

    async def _listen(self) -> None:
        """Turn notifications (and, without them, every POLL_SECS) into
        ``_news``, which stays set until the claimer looks: a notification
        that arrives during a claim is not lost."""
        while True:
            await self._wait(WORK_CHANNEL, POLL_SECS)
            self._news.set()

    def _news_arrived(self) -> None:
        """Ends were written: their organizations may have room again."""
        self._news.set()

    def _release(self, execution_id: str, _: asyncio.Task[None]) -> None:
        del self._runs[execution_id]
        self._room.set()

    async def _keep_leases(self) -> None:
        interval = min(max(self._lease_ms / 3000, 0.05), 1.0)
        while True:
            await asyncio.sleep(interval)
            ids = list(self._attempts)
            if not ids:
                continue
            try:
                held, cancel = await self._store.heartbeat(
                    self._owner, ids, self._lease_ms, self._now_ms()
                )
            except Exception:
                # The leases last several heartbeats: the next one may do.
                log.exception("executions.heartbeat_failed")
                continue
            for execution_id in ids:
                attempt = self._attempts.get(execution_id)
                if attempt is None or attempt.done():
                    continue  # it finished meanwhile; its end is being written
                if execution_id in cancel:
                    self._stops[execution_id] = _CANCELLED
                elif execution_id not in held:
                    self._stops[execution_id] = _LEASE_LOST
                else:
                    continue
                # Stop the work in the pod either way.
                attempt.cancel()

    async def _run(self, claimed: ClaimedExecution) -> None:
        execution = claimed.execution
        if execution.attempts == 1:
            platform_metrics.observe(
                platform_metrics.EXECUTION_QUEUE_AGE,
                max(0, self._now_ms() - execution.created_at_ms) / 1000,
            )
        attempt = asyncio.create_task(self._attempt(claimed))
        self._attempts[execution.id] = attempt
        try:
            await asyncio.wait({attempt})
        finally:
            del self._attempts[execution.id]
            if not attempt.done():  # the pool is closing
                attempt.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await attempt
        stop = self._stops.pop(execution.id, None)
        try:
            await self._conclude(claimed, attempt, stop)
        except Exception:
            # The database hiccuped: the lease lapses and the execution is
            # taken over; the pool carries on.
            log.exception(
                "execution.worker_error", execution_id=execution.id, attempt=execution.attempts
            )

    async def _conclude(
        self, claimed: ClaimedExecution, attempt: asyncio.Task[_Outcome], stop: str | None
    ) -> None:
        """Record how an attempt ended: retried, or a terminal state."""
        execution = claimed.execution
        now = self._now_ms()
        if stop == _LEASE_LOST:
            log.warning("execution.lease_lost", execution_id=execution.id)
            return
        if stop == _CANCELLED:
            app = await stored_app(self._apps, execution.organization, execution.app)
            outcome = _Outcome(
                ExecutionStatus.CANCELLED,
                error="cancelled by a caller",
                retention_ms=retention_ms(app) if app else None,
            )
        else:
            outcome = attempt.result()
        if outcome.retry and execution.attempts < self._max_attempts:
            backoff = RETRY_BACKOFF_SECS * 2 ** (execution.attempts - 1)
            if await self._store.retry(
                self._owner,
                execution.id,
                outcome.error,
                outcome.error_class,
                now + int(backoff * 1000),
            ):
                log.info(
                    "execution.retry",
                    execution_id=execution.id,
                    attempt=execution.attempts,
                    error_class=outcome.error_class,
                    backoff_secs=backoff,
                )
                platform_metrics.count(
                    platform_metrics.EXECUTION_RETRIES, outcome.error_class or "none"
                )
                return
        await self._completions.record(
            ExecutionEnd(
                execution_id=execution.id,
                status=outcome.status,
                result=outcome.result,
                status_code=outcome.status_code,
                error=outcome.error,
                error_class=outcome.error_class,
                metrics=ExecutionMetrics(
                    cold_start_ms=outcome.cold_start_ms,
                    execution_ms=outcome.execution_ms,
                    # Seed 001: billed = execution, plus init when cold.
                    billed_duration_ms=outcome.execution_ms + outcome.cold_start_ms,
                    cpu_used_ms=outcome.cpu_used_ms,
                    memory_used_mb=outcome.memory_used_mb,
                    result_size_bytes=len(outcome.result),
                ),
                function_version=outcome.function_version,
                completed_at_ms=now,
                retention_ms=outcome.retention_ms,
            )
        )

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
