"""One change of what serves an app at a time.

Publishing, rolling back, splitting traffic, a settings change and a
rollout's step each read what serves, make a version ready (which can take
seconds) and then move traffic. Two of them interleaved on one app could
activate an older version after a newer one, or cut a version from code
another change just replaced; so each holds the app's lock from the read to
the move. Locks exist while someone holds or awaits them, so their number
stays that of apps being changed right now.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class AppLocks:
    """An asyncio lock per app, made on first use and dropped when unused."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, organization: str, name: str) -> AsyncIterator[None]:
        key = (organization, name)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
