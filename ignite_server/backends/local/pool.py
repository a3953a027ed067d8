"""Pre-started runtime processes, specialized for an app on demand.

Starting a sandbox and an interpreter is most of a cold start (≈50 ms for
Python); loading an app's code into an interpreter that already runs is a
few ms. So for every runtime whose manifest names a ``prestart`` pool, the
backend keeps ``size`` generic pods running (sandboxed, no code, health
``503``) and hands one out when a pod for an app is needed; the caller makes
the app's code appear in the pod's code directory and posts
``/_ignite/load``. Each hand-out is followed by a refill in the background
shortly after the pod is specialized (once its first request has had the
CPU to itself), so a burst of cold starts takes the pool's pods first and
then falls back to fresh starts, which cost no more than without a pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from ignite_common.task_supervisor import TaskSupervisor
from ignite_server.backends.local.pod import LocalPod
from ignite_server.ports.pod_backend import PodStartError

log = structlog.get_logger(__name__)

#: How long a refill waits after a hand-out: the specialized pod's first
#: request follows at once, and starting a sandbox meanwhile (a fork of the
#: server, mounts, a runtime's own start-up) would slow it by milliseconds
#: on a small machine; a tenth of a second later it competes with nothing.
REFILL_DELAY_SECS = 0.1


@dataclass(frozen=True)
class PoolStats:
    """What a pool holds and has handed out, for tests and operators."""

    name: str
    #: Ids of the pre-started pods waiting to be handed out.
    idle: tuple[str, ...]
    #: Pods handed out pre-started.
    warm_hits: int
    #: Pods started on demand because no pre-started one was idle.
    cold_starts: int


class WarmPool:
    """Idle pre-started pods of one kind (one launch manifest's pool key)."""

    def __init__(self, name: str, size: int, start: Callable[[], Awaitable[LocalPod]]) -> None:
        self.name = name
        self.size = size
        self._start = start
        self._idle: list[LocalPod] = []
        self._tasks = TaskSupervisor(f"pool {name}")
        self._refilling = False
        self._closed = False
        self._warm_hits = 0
        self._cold_starts = 0

    async def take(self) -> LocalPod:
        """A listening, unspecialized pod: from the pool when it has one,
        else freshly started. The caller calls ``warm()`` once it has
        specialized the pod: refilling sooner would compete with that for
        the CPU, on the critical path of a cold start."""
        while self._idle:
            candidate = self._idle.pop(0)
            if candidate.exit is None:
                self._warm_hits += 1
                return candidate
        self._cold_starts += 1
        return await self._start()

    def _ensure_refill(self) -> None:
        if self._closed or self.size <= 0:
            return
        if not self._refilling:
            self._refilling = True
            self._tasks.spawn(self._fill(), name="refill")

    async def _fill(self) -> None:
        try:
            await asyncio.sleep(REFILL_DELAY_SECS)
            while not self._closed and len(self._idle) < self.size:
                try:
                    pod = await self._start()
                except PodStartError as exc:
                    log.warning("cannot pre-start a pod", pool=self.name, error=exc.message)
                    return
                if self._closed:
                    await pod.close()
                    return
                self._idle.append(pod)
        finally:
            self._refilling = False

    def stats(self) -> PoolStats:
        """The pool's idle pods and counters."""
        return PoolStats(
            self.name, tuple(pod.id for pod in self._idle), self._warm_hits, self._cold_starts
        )

    def warm(self) -> None:
        """Start filling the pool up to its size, in the background, after
        ``REFILL_DELAY_SECS``."""
        self._ensure_refill()

    async def close(self) -> None:
        """Stop filling, and stop the idle pods."""
        self._closed = True
        await self._tasks.close()
        idle, self._idle = self._idle, []
        await asyncio.gather(*(pod.close() for pod in idle), return_exceptions=True)
