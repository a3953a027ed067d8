"""App log entries on PostgreSQL, written in batches, read by app or by
execution. New batches are announced on a NOTIFY channel so followers see
them without polling hard."""

from __future__ import annotations

import datetime
from typing import Any

import asyncpg

from ignite_server.domain.models import LogEntry, LogStream
from ignite_server.ports.log_store import LOG_CHANNEL
from ignite_server.store.database import connection

#: Postgres NOTIFY channel announcing new log entries.


def _entry(row: Any) -> LogEntry:
    return LogEntry(
        timestamp_ms=row["ts_ms"],
        organization=row["organization"],
        app=row["name"],
        version=row["version"],
        execution_id=row["execution_id"],
        stream=LogStream(row["stream"]),
        message=row["message"],
    )


class PostgresLogStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def write(self, entries: list[LogEntry]) -> None:
        """Insert entries; those of apps that no longer exist are dropped."""
        if not entries:
            return
        async with connection(self._pool) as conn:
            await conn.execute(
                """
                INSERT INTO logs (app_uid, version, execution_id, stream, message, ts_ms)
                SELECT a.uid, e.version, e.execution_id, e.stream, e.message, e.ts_ms
                FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[],
                            $6::text[], $7::bigint[])
                     AS e(organization, name, version, execution_id, stream, message, ts_ms)
                JOIN apps a ON a.organization = e.organization AND a.name = e.name
                """,
                [e.organization for e in entries],
                [e.app for e in entries],
                [e.version for e in entries],
                [e.execution_id for e in entries],
                [int(e.stream) for e in entries],
                # PostgreSQL text cannot hold NUL bytes.
                [e.message.replace("\x00", "\ufffd") for e in entries],
                [e.timestamp_ms for e in entries],
            )
            await conn.execute("SELECT pg_notify($1, '')", LOG_CHANNEL)

    async def read(
        self,
        organization: str,
        app: str,
        execution_id: str,
        since_ms: int,
        after_id: int,
        limit: int,
        newest: bool,
    ) -> list[tuple[int, LogEntry]]:
        """Entries of an app (and/or one execution) in id order. With
        ``newest``, the last ``limit`` matching entries, else the first
        ``limit`` after ``after_id``."""
        order = "DESC" if newest else "ASC"
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                f"""
                SELECT l.id, l.version, l.execution_id, l.stream, l.message, l.ts_ms,
                       a.organization, a.name
                FROM logs l JOIN apps a ON a.uid = l.app_uid
                WHERE a.organization = $1 AND ($2 = '' OR a.name = $2)
                  AND ($3 = '' OR l.execution_id = $3)
                  AND l.ts_ms >= $4 AND l.id > $5
                ORDER BY l.id {order} LIMIT $6
                """,
                organization,
                app,
                execution_id,
                since_ms,
                after_id,
                limit,
            )
        pairs = [(r["id"], _entry(r)) for r in rows]
        return list(reversed(pairs)) if newest else pairs

    async def add_usage(self, usage: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
        """One upsert for every (organization, day) of the batch."""
        keys = sorted(usage)
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                """
                INSERT INTO log_usage AS u (organization, day, bytes)
                SELECT * FROM unnest($1::text[], $2::date[], $3::bigint[])
                ON CONFLICT (organization, day) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes
                RETURNING organization, to_char(day, 'YYYY-MM-DD') AS day, bytes
                """,
                [k[0] for k in keys],
                [datetime.date.fromisoformat(k[1]) for k in keys],
                [usage[k] for k in keys],
            )
        return {(r["organization"], r["day"]): r["bytes"] for r in rows}

    async def delete_older_than(self, ts_ms: int) -> int:
        cutoff = datetime.datetime.fromtimestamp(ts_ms / 1000, datetime.UTC).date()
        async with connection(self._pool) as conn:
            result = await conn.execute("DELETE FROM logs WHERE ts_ms < $1", ts_ms)
            await conn.execute("DELETE FROM log_usage WHERE day < $1", cutoff)
        return int(result.split()[-1])
