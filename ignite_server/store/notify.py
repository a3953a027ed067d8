"""Wake-ups from PostgreSQL NOTIFY: one listening connection per server,
any number of coroutines waiting for news on a channel."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg


class Notifier:
    def __init__(self, pool: asyncpg.Pool, channels: tuple[str, ...]) -> None:
        self._pool = pool
        self._channels = channels
        self._conn: Any = None
        self._events: dict[str, asyncio.Event] = {c: asyncio.Event() for c in channels}

    async def start(self) -> None:
        self._conn = await self._pool.acquire()
        for channel in self._channels:
            await self._conn.add_listener(channel, self._on_notify)

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        event = self._events[channel]
        event.set()
        # Waiters woke; the next wait needs a fresh notification.
        self._events[channel] = asyncio.Event()

    async def wait(self, channel: str, seconds: float) -> None:
        """Return at the next notification on ``channel`` or after ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._events[channel].wait(), seconds)

    async def close(self) -> None:
        if self._conn is not None:
            for channel in self._channels:
                with contextlib.suppress(Exception):
                    await self._conn.remove_listener(channel, self._on_notify)
            await self._pool.release(self._conn)
            self._conn = None
