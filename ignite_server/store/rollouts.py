"""Gradual rollouts on PostgreSQL (ports/rollout_store.py): the ``rollouts``
table, one row per app. Claims take running rows whose lease is free,
expired or the claimer's own, ``FOR UPDATE SKIP LOCKED``, as workers claim
executions."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from ignite_server.domain.models import RolloutPolicy, RolloutState, RolloutStatus
from ignite_server.store.database import connection

_SELECT = """
    SELECT a.organization, a.name, r.*
    FROM rollouts r JOIN apps a ON a.uid = r.app_uid
"""


def _policy_json(policy: RolloutPolicy) -> str:
    return json.dumps(
        {
            "steps": list(policy.steps),
            "step_secs": policy.step_secs,
            "max_error_rate_increase_pct": policy.max_error_rate_increase_pct,
            "max_p95_increase_pct": policy.max_p95_increase_pct,
            "min_requests": policy.min_requests,
        }
    )


def _status(row: Any) -> RolloutStatus:
    policy = json.loads(row["policy"])
    return RolloutStatus(
        organization=row["organization"],
        app=row["name"],
        state=RolloutState(row["state"]),
        from_version=row["from_version"],
        to_version=row["to_version"],
        policy=RolloutPolicy(
            steps=tuple(int(p) for p in policy["steps"]),
            step_secs=int(policy["step_secs"]),
            max_error_rate_increase_pct=int(policy["max_error_rate_increase_pct"]),
            max_p95_increase_pct=int(policy["max_p95_increase_pct"]),
            min_requests=int(policy["min_requests"]),
        ),
        step=row["step"],
        decision=row["decision"],
        started_at_ms=row["started_at_ms"],
        step_started_at_ms=row["step_started_at_ms"],
        updated_at_ms=row["updated_at_ms"],
    )


class PostgresRolloutStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def put(self, status: RolloutStatus) -> None:
        async with connection(self._pool) as conn:
            await conn.execute(
                """
                INSERT INTO rollouts (app_uid, state, from_version, to_version, policy, step,
                    decision, started_at_ms, step_started_at_ms, updated_at_ms)
                SELECT uid, $3, $4, $5, $6, $7, $8, $9, $10, $11
                FROM apps WHERE organization = $1 AND name = $2
                ON CONFLICT (app_uid) DO UPDATE SET
                    state = EXCLUDED.state, from_version = EXCLUDED.from_version,
                    to_version = EXCLUDED.to_version, policy = EXCLUDED.policy,
                    step = EXCLUDED.step, decision = EXCLUDED.decision,
                    started_at_ms = EXCLUDED.started_at_ms,
                    step_started_at_ms = EXCLUDED.step_started_at_ms,
                    updated_at_ms = EXCLUDED.updated_at_ms,
                    lease_owner = NULL, lease_expires_ms = NULL
                """,
                status.organization,
                status.app,
                int(status.state),
                status.from_version,
                status.to_version,
                _policy_json(status.policy),
                status.step,
                status.decision,
                status.started_at_ms,
                status.step_started_at_ms,
                status.updated_at_ms,
            )

    async def get(self, organization: str, name: str) -> RolloutStatus | None:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                _SELECT + " WHERE a.organization = $1 AND a.name = $2", organization, name
            )
        return _status(row) if row else None

    async def claim(self, owner: str, now_ms: int, lease_ms: int) -> list[RolloutStatus]:
        async with connection(self._pool) as conn, conn.transaction():
            uids = await conn.fetch(
                """
                SELECT app_uid FROM rollouts
                WHERE state = $1
                  AND (lease_owner IS NULL OR lease_owner = $2 OR lease_expires_ms < $3)
                FOR UPDATE SKIP LOCKED
                """,
                int(RolloutState.RUNNING),
                owner,
                now_ms,
            )
            if not uids:
                return []
            await conn.execute(
                "UPDATE rollouts SET lease_owner = $2, lease_expires_ms = $3"
                " WHERE app_uid = ANY($1::bigint[])",
                [r["app_uid"] for r in uids],
                owner,
                now_ms + lease_ms,
            )
            rows = await conn.fetch(
                _SELECT + " WHERE r.app_uid = ANY($1::bigint[])", [r["app_uid"] for r in uids]
            )
        return [_status(r) for r in rows]

    async def advance(
        self,
        organization: str,
        name: str,
        *,
        from_step: int,
        step: int,
        decision: str,
        step_started_at_ms: int,
        now_ms: int,
    ) -> bool:
        async with connection(self._pool) as conn:
            done = await conn.execute(
                """
                UPDATE rollouts r SET step = $4, decision = $5, step_started_at_ms = $6,
                    updated_at_ms = $7
                FROM apps a
                WHERE a.uid = r.app_uid AND a.organization = $1 AND a.name = $2
                  AND r.state = $8 AND r.step = $3
                """,
                organization,
                name,
                from_step,
                step,
                decision,
                step_started_at_ms,
                now_ms,
                int(RolloutState.RUNNING),
            )
        return not done.endswith(" 0")

    async def finish(
        self, organization: str, name: str, state: RolloutState, decision: str, now_ms: int
    ) -> RolloutStatus | None:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                """
                UPDATE rollouts r SET state = $3, decision = $4, updated_at_ms = $5,
                    lease_owner = NULL, lease_expires_ms = NULL
                FROM apps a
                WHERE a.uid = r.app_uid AND a.organization = $1 AND a.name = $2
                  AND r.state = $6
                RETURNING a.organization, a.name, r.*
                """,
                organization,
                name,
                int(state),
                decision,
                now_ms,
                int(RolloutState.RUNNING),
            )
        return _status(row) if row else None

    async def release(self, owner: str) -> None:
        async with connection(self._pool) as conn:
            await conn.execute(
                "UPDATE rollouts SET lease_owner = NULL, lease_expires_ms = NULL"
                " WHERE lease_owner = $1",
                owner,
            )
