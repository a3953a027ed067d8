"""Durable executions on PostgreSQL: submit, claim under a lease, complete.

Claiming uses ``FOR UPDATE SKIP LOCKED`` so any number of workers, in any
number of server processes, take disjoint rows without waiting on each other.
A claim sets ``lease_owner`` and ``lease_expires_ms``; the owner extends the
lease by heartbeats while it runs the execution. Every write a worker makes
afterwards (complete, retry) is conditional on still owning the lease, so a
worker that stalled past its lease and lost the row to another can never
overwrite the other's result. A RUNNING row whose lease expired is claimable
again (its worker or server died): it runs again while attempts remain, and
is failed with error_class "platform" once they are used up.

Every hot statement is one round trip whatever the batch: a submit looks up
the app, inserts the row and notifies the workers in one INSERT; a claim
leases up to ``limit`` rows in one UPDATE; ``finish`` records any number of
terminal states in one UPDATE joined to the arrays of their values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from ignite_server.domain.errors import NotFound
from ignite_server.domain.models import (
    ClaimedExecution,
    Execution,
    ExecutionMetrics,
    ExecutionStatus,
    InvocationRequest,
)
from ignite_server.domain.quotas import quota_exceeded
from ignite_server.ports.execution_store import WORK_CHANNEL, ExecutionEnd
from ignite_server.store.database import connection

_PENDING = int(ExecutionStatus.PENDING)
_RUNNING = int(ExecutionStatus.RUNNING)
#: "No cap" for counts that take one (an int4 parameter).
_NO_CAP = 2**31 - 1


def _execution(row: Any) -> Execution:
    metrics = json.loads(row["metrics"]) if row["metrics"] else {}
    return Execution(
        id=row["id"],
        organization=row["organization"],
        app=row["app_name"],
        status=ExecutionStatus(row["status"]),
        requested_version=row["requested_version"],
        function_version=row["function_version"],
        result=bytes(row["result"] or b""),
        status_code=row["status_code"],
        error=row["error"],
        error_class=row["error_class"],
        metrics=ExecutionMetrics(**metrics),
        attempts=row["attempts"],
        idempotency_key=row["idempotency_key"] or "",
        created_at_ms=row["created_at_ms"],
        started_at_ms=row["started_at_ms"],
        completed_at_ms=row["completed_at_ms"],
    )


def _request(row: Any) -> InvocationRequest:
    return InvocationRequest(
        method=row["method"],
        path=row["path"],
        query=row["query"],
        headers=json.loads(row["headers"]),
        body=bytes(row["body"]),
    )


def not_found(execution_id: str) -> NotFound:
    return NotFound(
        f"execution {execution_id} not found",
        reason="EXECUTION_NOT_FOUND",
        metadata={"execution_id": execution_id[:64]},
    )


class PostgresExecutionStore:
    """Executions in the same database as apps (one pool)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

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
        """Store a PENDING execution; with an idempotency key already used for
        this app, return that execution instead. Returns (execution, created).
        An organization with ``max_pending`` executions waiting already gets
        QUOTA_EXCEEDED (quota ``pending_executions``)."""
        cap = max_pending if max_pending is not None else _NO_CAP
        values = (
            execution_id,
            organization,
            app,
            requested_version,
            _PENDING,
            request.method,
            request.path,
            request.query,
            json.dumps(dict(request.headers)),
            request.body,
            idempotency_key or None,
            now_ms,
            WORK_CHANNEL,
            cap,
        )
        async with connection(self._pool) as conn:
            # One statement: the app lookup, the quota, the insert and the
            # wake-up of the workers (the notification is sent when it
            # commits). The count stops at the cap, so a deep backlog costs
            # at most ``cap`` index entries to count.
            row = await conn.fetchrow(
                f"""
                INSERT INTO executions (id, app_uid, organization, app_name, requested_version,
                    status, method, path, query, headers, body, idempotency_key,
                    run_after_ms, created_at_ms)
                SELECT $1, uid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12
                FROM apps WHERE organization = $2 AND name = $3
                  AND (SELECT count(*) FROM (
                        SELECT 1 FROM executions
                        WHERE organization = $2 AND status = {_PENDING} LIMIT $14) p) < $14
                ON CONFLICT (app_uid, idempotency_key) WHERE idempotency_key IS NOT NULL
                DO NOTHING
                RETURNING *, pg_notify($13, '')
                """,
                *values,
            )
            if row is not None:
                return _execution(row), True
            # No row: the app does not exist, or the key was used already.
            existing = await conn.fetchrow(
                """
                SELECT e.* FROM apps a
                LEFT JOIN executions e ON e.app_uid = a.uid AND e.idempotency_key = $3
                WHERE a.organization = $1 AND a.name = $2
                """,
                organization,
                app,
                idempotency_key,
            )
        if existing is None:
            raise NotFound(
                f"app {organization}/{app} not found",
                reason="APP_NOT_FOUND",
                metadata={"app_id": f"{organization}/{app}"},
            )
        if existing["id"] is None:
            pending = await self._pending(organization, cap)
            if pending >= cap:
                raise quota_exceeded(
                    organization,
                    "pending_executions",
                    cap,
                    pending,
                    "executions",
                    "another asynchronous execution",
                )
            # The twin was deleted meanwhile, or the backlog shrank: again.
            return await self.submit(
                execution_id,
                organization,
                app,
                request,
                requested_version,
                idempotency_key,
                now_ms,
                max_pending,
            )
        return _execution(existing), False

    async def _pending(self, organization: str, cap: int) -> int:
        """The organization's PENDING executions, counted up to ``cap``."""
        async with connection(self._pool) as conn:
            return int(
                await conn.fetchval(
                    f"""
                    SELECT count(*) FROM (SELECT 1 FROM executions
                        WHERE organization = $1 AND status = {_PENDING} LIMIT $2) p
                    """,
                    organization,
                    cap,
                )
            )

    async def get(self, organization: str, execution_id: str) -> Execution:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                "SELECT * FROM executions WHERE id = $1 AND organization = $2",
                execution_id,
                organization,
            )
        if row is None:
            raise not_found(execution_id)
        return _execution(row)

    async def delete(self, execution_id: str) -> None:
        async with connection(self._pool) as conn:
            await conn.execute("DELETE FROM executions WHERE id = $1", execution_id)

    async def page(
        self,
        organization: str,
        app: str,
        status: ExecutionStatus | None,
        before_id: str,
        limit: int,
    ) -> list[Execution]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                """
                SELECT * FROM executions
                WHERE organization = $1 AND ($2 = '' OR app_name = $2)
                  AND ($3 = 0 OR status = $3) AND ($4 = '' OR id < $4)
                ORDER BY id DESC LIMIT $5
                """,
                organization,
                app,
                int(status or 0),
                before_id,
                limit,
            )
        return [_execution(r) for r in rows]

    async def request_cancel(self, organization: str, execution_id: str, now_ms: int) -> Execution:
        """PENDING → CANCELLED at once; RUNNING → flagged for its worker to stop."""
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                """
                UPDATE executions SET
                    status = CASE WHEN status = $3 THEN $5 ELSE status END,
                    completed_at_ms = CASE WHEN status = $3 THEN $6 ELSE completed_at_ms END,
                    error = CASE WHEN status = $3 THEN 'cancelled by a caller' ELSE error END,
                    cancel_requested = (status = $4)
                WHERE id = $1 AND organization = $2
                RETURNING *
                """,
                execution_id,
                organization,
                _PENDING,
                _RUNNING,
                int(ExecutionStatus.CANCELLED),
                now_ms,
            )
            if row is not None and row["cancel_requested"]:
                await conn.execute("SELECT pg_notify($1, $2)", WORK_CHANNEL, execution_id)
        if row is None:
            raise not_found(execution_id)
        return _execution(row)

    async def fail_exhausted(self, now_ms: int, max_attempts: int) -> int:
        """Fail RUNNING executions whose lease expired with no attempt left."""
        async with connection(self._pool) as conn:
            result = await conn.execute(
                """
                UPDATE executions SET status = $1, error_class = 'platform',
                    error = 'the worker running it stopped responding ' || attempts || ' times',
                    completed_at_ms = $2, lease_owner = NULL
                WHERE status = $3 AND lease_expires_ms < $2 AND attempts >= $4
                """,
                int(ExecutionStatus.FAILED),
                now_ms,
                _RUNNING,
                max_attempts,
            )
        return int(result.split()[-1])

    async def claim(
        self,
        owner: str,
        limit: int,
        lease_ms: int,
        now_ms: int,
        max_attempts: int,
        per_org_limit: int | None = None,
    ) -> list[ClaimedExecution]:
        """Take up to ``limit`` runnable executions under a lease for
        ``owner``, round-robin across organizations (each organization's
        oldest first, then every organization's second, …), leaving out
        organizations that already run ``per_org_limit`` (None: no cap)."""
        cap = _NO_CAP if per_org_limit is None else per_org_limit
        async with connection(self._pool) as conn:
            # The statuses are literals: a generic plan must still match
            # the partial indexes executions_claimable(_by_org).
            rows = await conn.fetch(
                f"""
                WITH RECURSIVE orgs(organization) AS (
                    -- The organizations with work, one index probe each
                    -- (a skip scan: a deep backlog of one is not read).
                    (SELECT organization FROM executions
                     WHERE status IN ({_PENDING}, {_RUNNING})
                     ORDER BY organization LIMIT 1)
                    UNION ALL
                    SELECT (SELECT e.organization FROM executions e
                            WHERE e.status IN ({_PENDING}, {_RUNNING})
                              AND e.organization > o.organization
                            ORDER BY e.organization LIMIT 1)
                    FROM orgs o WHERE o.organization IS NOT NULL
                ),
                picked AS (
                    SELECT c.id FROM orgs o
                    CROSS JOIN LATERAL (
                        SELECT count(*) AS n FROM executions r
                        WHERE r.organization = o.organization AND r.status = {_RUNNING}
                          AND r.lease_expires_ms >= $3
                    ) running
                    CROSS JOIN LATERAL (
                        SELECT y.id, y.run_after_ms,
                               row_number() OVER (ORDER BY y.run_after_ms) AS turn
                        FROM (
                            -- Oldest first along executions_claimable_by_org
                            -- (a RUNNING row was claimed after its
                            -- run_after_ms, so the order holds for it too).
                            SELECT id, run_after_ms FROM executions
                            WHERE organization = o.organization
                              AND status IN ({_PENDING}, {_RUNNING}) AND run_after_ms <= $3
                              AND (status = $5 OR (lease_expires_ms < $3 AND attempts < $7))
                            ORDER BY run_after_ms
                            LIMIT $6
                            FOR UPDATE SKIP LOCKED
                        ) y
                    ) c
                    WHERE o.organization IS NOT NULL AND c.turn <= $8 - running.n
                    ORDER BY c.turn, c.run_after_ms
                    LIMIT $6
                )
                UPDATE executions e SET status = $2, attempts = e.attempts + 1,
                    lease_owner = $1, lease_expires_ms = $3 + $4, started_at_ms = $3
                WHERE e.id IN (SELECT id FROM picked)
                RETURNING e.*
                """,
                owner,
                _RUNNING,
                now_ms,
                lease_ms,
                _PENDING,
                limit,
                max_attempts,
                cap,
            )
        return [ClaimedExecution(_execution(r), _request(r)) for r in rows]

    async def heartbeat(
        self, owner: str, ids: list[str], lease_ms: int, now_ms: int
    ) -> tuple[set[str], set[str]]:
        """Extend the leases ``owner`` still holds. Returns (held, to cancel)."""
        if not ids:
            return set(), set()
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                """
                UPDATE executions SET lease_expires_ms = $3::bigint + $4::bigint
                WHERE id = ANY($2) AND lease_owner = $1 AND status = $5
                RETURNING id, cancel_requested
                """,
                owner,
                ids,
                now_ms,
                lease_ms,
                _RUNNING,
            )
        return {r["id"] for r in rows}, {r["id"] for r in rows if r["cancel_requested"]}

    async def finish(self, owner: str, ends: Sequence[ExecutionEnd]) -> set[str]:
        """Record terminal states in one statement, each only while ``owner``
        holds its lease; returns the ids recorded (the others lost theirs)."""
        if not ends:
            return set()
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                """
                UPDATE executions e SET status = u.status, result = u.result,
                    status_code = u.status_code, error = u.error, error_class = u.error_class,
                    metrics = u.metrics::jsonb, function_version = u.function_version,
                    completed_at_ms = u.completed_at_ms,
                    lease_owner = NULL, lease_expires_ms = NULL,
                    expires_at_ms = u.completed_at_ms + u.retention_ms
                FROM unnest($2::text[], $3::int[], $4::bytea[], $5::int[], $6::text[],
                            $7::text[], $8::text[], $9::int[], $10::bigint[], $11::bigint[])
                    AS u(id, status, result, status_code, error, error_class, metrics,
                         function_version, completed_at_ms, retention_ms)
                WHERE e.id = u.id AND e.lease_owner = $1 AND e.status = $12
                RETURNING e.id
                """,
                owner,
                [end.execution_id for end in ends],
                [int(end.status) for end in ends],
                [end.result for end in ends],
                [end.status_code for end in ends],
                [end.error for end in ends],
                [end.error_class for end in ends],
                [json.dumps(end.metrics.__dict__) for end in ends],
                [end.function_version for end in ends],
                [end.completed_at_ms for end in ends],
                [end.retention_ms for end in ends],
                _RUNNING,
            )
        return {r["id"] for r in rows}

    async def retry(
        self, owner: str, execution_id: str, error: str, error_class: str, run_after_ms: int
    ) -> bool:
        """Put a failed attempt back to PENDING; False when the lease was lost."""
        async with connection(self._pool) as conn:
            done = await conn.fetchval(
                """
                UPDATE executions SET status = $3, error = $4, error_class = $5,
                    run_after_ms = $6, lease_owner = NULL, lease_expires_ms = NULL
                WHERE id = $1 AND lease_owner = $2 AND status = $7 AND NOT cancel_requested
                RETURNING 1
                """,
                execution_id,
                owner,
                _PENDING,
                error,
                error_class,
                run_after_ms,
                _RUNNING,
            )
        return done is not None

    async def delete_expired(self, now_ms: int) -> int:
        async with connection(self._pool) as conn:
            result = await conn.execute(
                "DELETE FROM executions WHERE expires_at_ms IS NOT NULL AND expires_at_ms < $1",
                now_ms,
            )
        return int(result.split()[-1])
