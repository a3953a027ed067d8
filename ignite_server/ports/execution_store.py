"""The port for durable executions: submitted, claimed under a lease,
finished or retried exactly once (see core/worker.py for how it is used)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ignite_server.domain.models import (
    ClaimedExecution,
    Execution,
    ExecutionMetrics,
    ExecutionStatus,
    InvocationRequest,
)

#: The notification channel a store signals when work is submitted.
WORK_CHANNEL = "ignite_executions"


@dataclass(frozen=True)
class ExecutionEnd:
    """The terminal state of one execution, as its worker records it."""

    execution_id: str
    status: ExecutionStatus
    result: bytes
    status_code: int
    error: str
    error_class: str
    metrics: ExecutionMetrics
    function_version: int
    completed_at_ms: int
    #: How long the record is kept after completion (None: until deleted).
    retention_ms: int | None


class ExecutionStore(Protocol):
    """Executions, their leases and their retention."""

    async def submit(
        self,
        execution_id: str,
        organization: str,
        app: str,
        request: InvocationRequest,
        requested_version: int,
        idempotency_key: str,
        now_ms: int,
        max_pending: int | None = None,
    ) -> tuple[Execution, bool]:
        """Store a PENDING execution; (it, True) or the idempotent twin, False.
        QUOTA_EXCEEDED when the organization has ``max_pending`` waiting."""
        ...

    async def get(self, organization: str, execution_id: str) -> Execution: ...

    async def page(
        self,
        organization: str,
        app: str,
        status: ExecutionStatus | None,
        before_id: str,
        limit: int,
    ) -> list[Execution]: ...

    async def request_cancel(
        self, organization: str, execution_id: str, now_ms: int
    ) -> Execution: ...

    async def claim(
        self,
        owner: str,
        limit: int,
        lease_ms: int,
        now_ms: int,
        max_attempts: int,
        per_org_limit: int | None = None,
    ) -> list[ClaimedExecution]:
        """Lease up to ``limit`` runnable executions to ``owner`` in one
        write, round-robin across organizations, none to an organization
        already running ``per_org_limit``."""
        ...

    async def heartbeat(
        self, owner: str, ids: list[str], lease_ms: int, now_ms: int
    ) -> tuple[set[str], set[str]]:
        """Extend ``owner``'s leases; (still held, asked to cancel)."""
        ...

    async def finish(self, owner: str, ends: Sequence[ExecutionEnd]) -> set[str]:
        """Record terminal states in one write, each only while ``owner``
        holds its lease; the ids recorded."""
        ...

    async def retry(
        self, owner: str, execution_id: str, error: str, error_class: str, run_after_ms: int
    ) -> bool: ...

    async def fail_exhausted(self, now_ms: int, max_attempts: int) -> int: ...

    async def delete(self, execution_id: str) -> None: ...

    async def delete_expired(self, now_ms: int) -> int: ...
