"""In-memory fakes of the store ports for core's fast tests: the same
contract as the PostgreSQL adapters (store/), which tests/store and the
end-to-end tests check against a real database, kept in dictionaries.

``InMemoryExecutionStore`` follows store/executions.py: submissions are
idempotent per app and key and refused past an organization's pending
quota, a claim leases PENDING executions (and RUNNING ones whose lease ran
out while attempts remain) round-robin across organizations, each one's
oldest first, up to its running cap, and every write after it is
conditional on the lease.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ignite_server.domain.errors import NotFound
from ignite_server.domain.models import (
    App,
    ClaimedExecution,
    Execution,
    ExecutionMetrics,
    ExecutionStatus,
    Submission,
)
from ignite_server.domain.quotas import quota_exceeded
from ignite_server.ports.execution_store import ExecutionEnd


def _not_found(execution_id: str) -> NotFound:
    return NotFound(f"execution {execution_id} not found", reason="EXECUTION_NOT_FOUND")


@dataclass
class _Row:
    execution: Execution
    submission: Submission
    run_after_ms: int
    lease_owner: str | None = None
    lease_expires_ms: int = 0
    cancel_requested: bool = False
    expires_at_ms: int | None = None


class InMemoryExecutionStore:
    """Executions in a dictionary; ``apps`` are the (org, name) that exist."""

    def __init__(self, apps: set[tuple[str, str]] | None = None) -> None:
        self.apps = apps if apps is not None else set()
        self.rows: dict[str, _Row] = {}
        #: Calls made, for tests that count round trips.
        self.claims = 0
        self.finishes = 0

    def add_app(self, app: App) -> None:
        self.apps.add((app.organization, app.name))

    # --- ExecutionStore -----------------------------------------------------

    async def submit(
        self,
        execution_id: str,
        submission: Submission,
        now_ms: int,
        max_pending: int | None = None,
    ) -> tuple[Execution, bool]:
        key = (submission.organization, submission.app)
        if key not in self.apps:
            raise NotFound(f"app {key[0]}/{key[1]} not found", reason="APP_NOT_FOUND")
        if submission.idempotency_key:
            for row in self.rows.values():
                same = (row.submission.organization, row.submission.app) == key
                if same and row.submission.idempotency_key == submission.idempotency_key:
                    return row.execution, False
        pending = sum(
            1
            for row in self.rows.values()
            if row.execution.organization == submission.organization
            and row.execution.status == ExecutionStatus.PENDING
        )
        if max_pending is not None and pending >= max_pending:
            raise quota_exceeded(
                submission.organization,
                "pending_executions",
                max_pending,
                pending,
                "executions",
                "another asynchronous execution",
            )
        execution = Execution(
            id=execution_id,
            organization=submission.organization,
            app=submission.app,
            status=ExecutionStatus.PENDING,
            requested_version=submission.version,
            function_version=0,
            result=b"",
            status_code=0,
            error="",
            error_class="",
            metrics=ExecutionMetrics(),
            attempts=0,
            idempotency_key=submission.idempotency_key,
            created_at_ms=now_ms,
            started_at_ms=0,
            completed_at_ms=0,
        )
        self.rows[execution_id] = _Row(execution, submission, run_after_ms=now_ms)
        return execution, True

    async def get(self, organization: str, execution_id: str) -> Execution:
        row = self.rows.get(execution_id)
        if row is None or row.execution.organization != organization:
            raise _not_found(execution_id)
        return row.execution

    async def page(
        self,
        organization: str,
        app: str,
        status: ExecutionStatus | None,
        before_id: str,
        limit: int,
    ) -> list[Execution]:
        found = [
            row.execution
            for row in self.rows.values()
            if row.execution.organization == organization
            and (not app or row.execution.app == app)
            and (status is None or row.execution.status == status)
            and (not before_id or row.execution.id < before_id)
        ]
        return sorted(found, key=lambda e: e.id, reverse=True)[:limit]

    async def request_cancel(self, organization: str, execution_id: str, now_ms: int) -> Execution:
        row = self.rows.get(execution_id)
        if row is None or row.execution.organization != organization:
            raise _not_found(execution_id)
        if row.execution.status == ExecutionStatus.PENDING:
            self._set(
                row,
                status=ExecutionStatus.CANCELLED,
                completed_at_ms=now_ms,
                error="cancelled by a caller",
            )
        row.cancel_requested = row.execution.status == ExecutionStatus.RUNNING
        return row.execution

    async def claim(
        self,
        owner: str,
        limit: int,
        lease_ms: int,
        now_ms: int,
        max_attempts: int,
        per_org_limit: int | None = None,
    ) -> list[ClaimedExecution]:
        self.claims += 1
        runnable = [
            row
            for row in self.rows.values()
            if row.run_after_ms <= now_ms
            and (
                row.execution.status == ExecutionStatus.PENDING
                or (
                    row.execution.status == ExecutionStatus.RUNNING
                    and row.lease_expires_ms < now_ms
                    and row.execution.attempts < max_attempts
                )
            )
        ]
        # Each organization's turn n is its n-th oldest, up to its room
        # under the cap; turns first, then age.
        turns: list[tuple[int, int, _Row]] = []
        for organization in {row.execution.organization for row in runnable}:
            running = sum(
                1
                for row in self.rows.values()
                if row.execution.organization == organization
                and row.execution.status == ExecutionStatus.RUNNING
                and row.lease_expires_ms >= now_ms
            )
            room = len(runnable) if per_org_limit is None else per_org_limit - running
            own = sorted(
                (r for r in runnable if r.execution.organization == organization),
                key=lambda r: r.run_after_ms,
            )
            turns += [(turn, row.run_after_ms, row) for turn, row in enumerate(own[:room])]
        claimed = []
        for _, _, row in sorted(turns, key=lambda t: t[:2])[:limit]:
            row.lease_owner, row.lease_expires_ms = owner, now_ms + lease_ms
            self._set(
                row,
                status=ExecutionStatus.RUNNING,
                attempts=row.execution.attempts + 1,
                started_at_ms=now_ms,
            )
            claimed.append(ClaimedExecution(row.execution, row.submission.request))
        return claimed

    async def heartbeat(
        self, owner: str, ids: list[str], lease_ms: int, now_ms: int
    ) -> tuple[set[str], set[str]]:
        held = {i for i in ids if self._leased(i, owner)}
        for i in held:
            self.rows[i].lease_expires_ms = now_ms + lease_ms
        return held, {i for i in held if self.rows[i].cancel_requested}

    async def finish(self, owner: str, ends: Sequence[ExecutionEnd]) -> set[str]:
        self.finishes += 1
        recorded = set()
        for end in ends:
            if not self._leased(end.execution_id, owner):
                continue
            row = self.rows[end.execution_id]
            row.lease_owner = None
            if end.retention_ms is not None:
                row.expires_at_ms = end.completed_at_ms + end.retention_ms
            self._set(
                row,
                status=end.status,
                result=end.result,
                status_code=end.status_code,
                error=end.error,
                error_class=end.error_class,
                metrics=end.metrics,
                function_version=end.function_version,
                completed_at_ms=end.completed_at_ms,
            )
            recorded.add(end.execution_id)
        return recorded

    async def retry(
        self, owner: str, execution_id: str, error: str, error_class: str, run_after_ms: int
    ) -> bool:
        row = self.rows.get(execution_id)
        if row is None or not self._leased(execution_id, owner) or row.cancel_requested:
            return False
        row.lease_owner, row.run_after_ms = None, run_after_ms
        self._set(row, status=ExecutionStatus.PENDING, error=error, error_class=error_class)
        return True

    async def fail_exhausted(self, now_ms: int, max_attempts: int) -> int:
        failed = 0
        for row in self.rows.values():
            e = row.execution
            if (
                e.status == ExecutionStatus.RUNNING
                and row.lease_expires_ms < now_ms
                and e.attempts >= max_attempts
            ):
                row.lease_owner = None
                self._set(
                    row,
                    status=ExecutionStatus.FAILED,
                    error_class="platform",
                    error=f"the worker running it stopped responding {e.attempts} times",
                    completed_at_ms=now_ms,
                )
                failed += 1
        return failed

    async def delete(self, execution_id: str) -> None:
        self.rows.pop(execution_id, None)

    async def delete_expired(self, now_ms: int) -> int:
        doomed = [
            i for i, row in self.rows.items() if row.expires_at_ms and row.expires_at_ms < now_ms
        ]
        for i in doomed:
            del self.rows[i]
        return len(doomed)

    # --- internals ----------------------------------------------------------

    def _leased(self, execution_id: str, owner: str) -> bool:
        row = self.rows.get(execution_id)
        return (
            row is not None
            and row.lease_owner == owner
            and row.execution.status == ExecutionStatus.RUNNING
        )

    @staticmethod
    def _set(row: _Row, **changes: object) -> None:
        row.execution = dataclasses.replace(row.execution, **changes)  # type: ignore[arg-type]
