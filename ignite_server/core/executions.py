"""Asynchronous invocations: submit, read, list and cancel Execution records.

InvokeAsync validates the request (the app exists and has something to run)
and stores a PENDING execution in the same transaction that checks the
idempotency key, then returns at once; core/worker.py runs it. Retention
follows the app's StorageMode (docs/executions.md): PERSISTENT keeps records
until the app is deleted, TTL deletes them ``ttl_seconds`` after completion,
EPHEMERAL deletes a completed record once it has been read (or an hour after
completion if nobody reads it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from ignite_server.core import defaults
from ignite_server.core.apps import stored_app
from ignite_server.core.execution_ids import new_execution_id
from ignite_server.core.paging import decode_token, encode_token
from ignite_server.core.run_targets import RunTargets
from ignite_server.core.validation import check_app_ref, check_name, check_page_size
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import (
    App,
    Execution,
    ExecutionStatus,
    Page,
    StorageMode,
    Submission,
)
from ignite_server.domain.quotas import Quotas
from ignite_server.observability import metrics
from ignite_server.ports.app_store import AppStore
from ignite_server.ports.execution_store import ExecutionStore

#: Idempotency keys are opaque to us, but bounded.
MAX_IDEMPOTENCY_KEY_CHARS = 256
#: An EPHEMERAL record nobody reads is deleted this long after completion.
EPHEMERAL_UNREAD_RETENTION_MS = 3600 * 1000
#: How long CancelExecution waits for a running execution's worker to stop
#: it. Workers look for cancellations at every lease heartbeat (at most a
#: second apart), so this is several heartbeats, and within a client deadline.
CANCEL_WAIT_SECS = 5.0
#: How often the store is read while waiting.
CANCEL_POLL_SECS = 0.05


def retention_ms(app: App) -> int | None:
    """How long a completed execution of ``app`` is kept (None: until deleted)."""
    if app.storage_mode == StorageMode.TTL:
        return app.ttl_seconds * 1000
    if app.storage_mode == StorageMode.EPHEMERAL:
        return EPHEMERAL_UNREAD_RETENTION_MS
    return None


class ExecutionService:
    def __init__(
        self,
        store: ExecutionStore,
        apps: AppStore,
        targets: RunTargets,
        quotas: Quotas | None = None,
    ) -> None:
        self._store = store
        self._apps = apps
        self._targets = targets
        self._quotas = quotas or Quotas()

    async def submit(self, submission: Submission) -> Execution:
        """An asynchronous invocation: checked, stored PENDING under a fresh
        execution id (or the idempotent twin returned), run by a worker."""
        check_app_ref(submission.organization, submission.app)
        if len(submission.idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS:
            raise InvalidArgument(
                f"idempotency_key is longer than {MAX_IDEMPOTENCY_KEY_CHARS} characters",
                reason="IDEMPOTENCY_KEY_TOO_LONG",
                metadata={"field": "idempotency_key"},
            )
        if len(submission.request.body) > defaults.MAX_ASYNC_BODY_BYTES:
            raise InvalidArgument(
                f"the body is larger than {defaults.MAX_ASYNC_BODY_BYTES} bytes",
                reason="BODY_TOO_LARGE",
                metadata={"field": "body"},
            )
        if submission.tag and submission.version:
            raise InvalidArgument(
                "set either version or tag, not both",
                reason="CONFLICTING_TARGET",
                metadata={"field": "version"},
            )
        # Fail fast on what can never run (unknown app, nothing published,
        # a version that does not exist) instead of storing doomed work.
        target = await self._targets.resolve(
            submission.organization, submission.app, submission.version, tag=submission.tag
        )
        if submission.tag:
            # The execution runs the version the tag names now.
            submission = dataclasses.replace(submission, version=target.version.version, tag="")
        execution, created = await self._store.submit(
            new_execution_id(),
            submission,
            int(time.time() * 1000),
            self._quotas.max_pending_executions,
        )
        if created:
            metrics.count(metrics.EXECUTIONS_SUBMITTED)
        return execution

    async def get(self, organization: str, execution_id: str) -> Execution:
        check_name(organization, "organization_name")
        execution = await self._store.get(organization, execution_id)
        if execution.terminal:
            app = await stored_app(self._apps, execution.organization, execution.app)
            if app is not None and app.storage_mode == StorageMode.EPHEMERAL:
                await self._store.delete(execution.id)
        return execution

    async def list(
        self,
        organization: str,
        app: str,
        status: int,
        page_size: int,
        page_token: str,
    ) -> Page[Execution]:
        check_name(organization, "organization_name")
        if app:
            check_name(app, "app_name")
        if status not in ExecutionStatus.__members__.values():
            raise InvalidArgument(
                "unknown status", reason="INVALID_ENUM", metadata={"field": "status"}
            )
        limit = check_page_size(page_size)
        before = decode_token(page_token)
        rows = await self._store.page(
            organization, app, ExecutionStatus(status) or None, before, limit + 1
        )
        token = encode_token(rows[limit - 1].id) if len(rows) > limit else ""
        return Page(rows[:limit], token)

    async def cancel(self, organization: str, execution_id: str) -> Execution:
        """Cancel and return the execution in the state the cancellation led
        to: CANCELLED, or the terminal state it reached first.

        A PENDING execution is cancelled at once; a RUNNING one is flagged,
        and its worker stops it at its next heartbeat, so the answer waits
        for that (up to CANCEL_WAIT_SECS, after which it is still RUNNING
        with the stop under way).
        """
        check_name(organization, "organization_name")
        execution = await self._store.request_cancel(
            organization, execution_id, int(time.time() * 1000)
        )
        deadline = time.monotonic() + CANCEL_WAIT_SECS
        while not execution.terminal and time.monotonic() < deadline:
            await asyncio.sleep(CANCEL_POLL_SECS)
            execution = await self._store.get(organization, execution_id)
        return execution
