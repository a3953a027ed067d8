"""Keeps the embedded PostgreSQL cluster running.

PostgreSQL supervises its own backends (a crashed backend makes the
postmaster reset the others and replay the WAL), but nothing supervises the
postmaster: ``pg_ctl`` daemonises it and exits. So the server does.

Every POLL_SECS the supervisor checks that the postmaster named in
``postmaster.pid`` is alive (embedded.py: a live ``postgres`` process in the
data directory; a zombie or a reused pid does not count). When it is not:

1. ``on_down`` runs: the server turns its health NOT_SERVING (load
   balancers and the gateway's /readyz stop sending) and expires every
   pooled connection. Meanwhile RPCs that need the database answer
   UNAVAILABLE / DATABASE_DOWN (store/database.py).
2. The cluster is started again through the same ``start`` the server
   boots with, which first kills the dead postmaster's orphaned backends and
   removes its stale lock files. PostgreSQL replays its WAL, so every
   committed transaction is there afterwards. A start that fails is retried
   after RESTART_BACKOFF_SECS, doubling up to MAX_RESTART_BACKOFF_SECS.
3. ``on_up`` runs: pooled connections are expired again (any that were
   handed out during the outage are closed when released, never reused) and
   health turns SERVING.

Execution workers need nothing of their own: a claim that fails is retried
every second, and a run cut short by the outage loses its lease to the next
claim (core/worker.py). The NOTIFY listener reconnects by itself
(store/notify.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from ignite_common.task_supervisor import TaskSupervisor
from ignite_server.store.embedded import EmbeddedPostgres

log = structlog.get_logger(__name__)

#: How often the postmaster is looked at: a crash is noticed within this.
POLL_SECS = 0.5
#: Wait before retrying a restart that failed; doubles on every failure, so a
#: cluster that cannot start (a full disk) is not hammered.
RESTART_BACKOFF_SECS = 0.5
MAX_RESTART_BACKOFF_SECS = 10.0

Callback = Callable[[], Awaitable[None]]


class DatabaseSupervisor:
    """Watches one embedded cluster and restarts it when its postmaster dies."""

    def __init__(self, cluster: EmbeddedPostgres, on_down: Callback, on_up: Callback) -> None:
        self._cluster = cluster
        self._on_down = on_down
        self._on_up = on_up
        self._tasks = TaskSupervisor("database-supervisor")
        #: Restarts so far (tests and logs).
        self.restarts = 0

    async def start(self) -> None:
        self._tasks.every(POLL_SECS, self._check, name="watch")

    async def close(self) -> None:
        """Stop watching (before the cluster is stopped on purpose)."""
        await self._tasks.close()

    async def _check(self) -> None:
        """Look at the postmaster once; restart the cluster if it died."""
        if await asyncio.to_thread(self._cluster.is_running):
            return
        log.error("postgres.died", pid=self._cluster.postmaster_pid())
        down_at = time.monotonic()
        await self._guard(self._on_down, "on_down")
        await self._restart()
        self.restarts += 1
        await self._guard(self._on_up, "on_up")
        log.warning(
            "postgres.recovered",
            downtime_secs=round(time.monotonic() - down_at, 2),
            restarts=self.restarts,
        )

    async def _restart(self) -> None:
        backoff = RESTART_BACKOFF_SECS
        while True:
            try:
                await self._cluster.start()
                return
            except Exception as err:  # any failure is retried
                log.error("postgres.restart_failed", error=str(err), retry_in_secs=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_RESTART_BACKOFF_SECS)

    @staticmethod
    async def _guard(callback: Callback, name: str) -> None:
        # A failing callback must not stop the supervision itself.
        try:
            await callback()
        except Exception:
            log.exception("postgres.supervisor_callback_failed", callback=name)
