"""Wake-ups from PostgreSQL NOTIFY: one listening connection per server,
any number of coroutines waiting for news on a channel.

When the listening connection is lost (the database restarted), a task
reconnects with a growing pause until it is back, then wakes every waiter:
notifications sent meanwhile are gone, so each waiter looks for itself.
Waiters never depend on it for correctness, only for latency: each waits at
most its own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import structlog

from ignite_common.task_supervisor import TaskSupervisor

log = structlog.get_logger(__name__)

#: First pause before reconnecting the listener; doubles up to the maximum.
RECONNECT_SECS = 0.2
MAX_RECONNECT_SECS = 2.0


class Notifier:
    def __init__(self, pool: asyncpg.Pool, channels: tuple[str, ...]) -> None:
        self._pool = pool
        self._channels = channels
        self._conn: Any = None
        self._events: dict[str, asyncio.Event] = {c: asyncio.Event() for c in channels}
        self._tasks = TaskSupervisor("notify")
        self._reconnecting = False
        self._closing = False

    async def start(self) -> None:
        await self._listen()

    async def _listen(self) -> None:
        conn = await self._pool.acquire()
        try:
            for channel in self._channels:
                await conn.add_listener(channel, self._on_notify)
        except BaseException:
            await self._pool.release(conn)
            raise
        conn.add_termination_listener(self._on_lost)
        self._conn = conn

    def _on_lost(self, conn: object) -> None:
        if self._closing or self._reconnecting:
            return
        log.warning("notify.connection_lost")
        self._reconnecting = True
        self._tasks.spawn(self._reconnect(), name="reconnect")

    async def _reconnect(self) -> None:
        lost, self._conn = self._conn, None
        if lost is not None:
            with contextlib.suppress(Exception):
                await self._pool.release(lost)
        pause = RECONNECT_SECS
        while True:
            try:
                await self._listen()
                break
            except Exception as err:  # the database is down still: try again
                log.debug("notify.reconnect_failed", error=str(err))
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RECONNECT_SECS)
        self._reconnecting = False
        log.info("notify.reconnected")
        for channel in self._channels:
            self._wake(channel)

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self._wake(channel)

    def _wake(self, channel: str) -> None:
        event = self._events[channel]
        event.set()
        # Waiters woke; the next wait needs a fresh notification.
        self._events[channel] = asyncio.Event()

    async def wait(self, channel: str, seconds: float) -> None:
        """Return at the next notification on ``channel`` or after ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._events[channel].wait(), seconds)

    async def close(self) -> None:
        self._closing = True
        await self._tasks.close()
        if self._conn is not None:
            for channel in self._channels:
                with contextlib.suppress(Exception):
                    await self._conn.remove_listener(channel, self._on_notify)
            with contextlib.suppress(Exception):
                await self._pool.release(self._conn)
            self._conn = None
