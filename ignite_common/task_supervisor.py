"""Owning background tasks: every task has an owner that cancels and awaits
it on shutdown (STYLE.md, asyncio), and a loop that crashes is restarted
rather than silently gone.

A ``TaskSupervisor`` belongs to one object (a worker pool, a cache, a
listener) and runs its tasks in three shapes:

- ``every(interval, step)``: call ``step`` every ``interval`` seconds; a
  step that raises is logged and the next one runs on time (a periodic
  sweep, refresh, flush or tick);
- ``keep_running(loop)``: run a long-lived coroutine; when it raises it is
  logged and started again after a back-off that doubles from
  ``backoff.first`` up to ``backoff.most`` and starts over once a run has
  lasted longer than ``backoff.most`` (a claimer, a watcher, a listener);
  when it returns, it is done;
- ``spawn(coroutine)``: one piece of work of its own (a pod start, a drain);
  a crash is logged.

``close()`` cancels every task and awaits them all, so nothing the object
started outlives it; ``wait()`` lets them finish instead. Either is safe to
call twice; nothing can be started once closed. ``cancel_and_wait`` is the
same for one task an object holds for a moment (an attempt, a call).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """How long a crashed loop waits before it runs again."""

    #: After the first crash.
    first: float = 0.1
    #: The longest wait; a run that lasted longer than this starts over at
    #: ``first`` when it crashes.
    most: float = 10.0


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended (whatever it raised).

    A cancellation of the caller while it waits still propagates."""
    if task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # Our own cancellation arrived while waiting: the suppress above must
    # not swallow it.
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError


class TaskSupervisor:
    """The background tasks of one owner, named ``owner`` in logs."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        """How many tasks are running now."""
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        return self._closed

    def spawn(self, work: Coroutine[Any, Any, T], *, name: str = "") -> asyncio.Task[T]:
        """Run ``work`` as a task of this owner."""
        if self._closed:
            work.close()
            raise RuntimeError(f"{self.owner} is closed; cannot start {name or 'a task'}")
        task = asyncio.create_task(work, name=f"{self.owner}:{name}" if name else None)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def every(
        self,
        interval: float,
        step: Callable[[], Awaitable[None] | None],
        *,
        name: str,
        first: bool = False,
    ) -> asyncio.Task[None]:
        """Call ``step`` every ``interval`` seconds (at once too, ``first``)."""
        return self.spawn(self._periodic(interval, step, name, first), name=name)

    def keep_running(
        self,
        loop: Callable[[], Awaitable[None]],
        *,
        name: str,
        backoff: Backoff = Backoff(),
    ) -> asyncio.Task[None]:
        """Run ``loop()``, again after a back-off whenever it raises."""
        return self.spawn(self._restarting(loop, name, backoff), name=name)

    async def wait(self) -> None:
        """Wait until every task has ended, also those started meanwhile."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel every task and wait until all have ended."""
        self._closed = True
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- internals ----------------------------------------------------------

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "task.crashed", owner=self.owner, task=task.get_name(), exc_info=task.exception()
            )

    async def _periodic(
        self,
        interval: float,
        step: Callable[[], Awaitable[None] | None],
        name: str,
        first: bool,
    ) -> None:
        if not first:
            await asyncio.sleep(interval)
        while True:
            try:
                done = step()
                if done is not None:
                    await done
            except Exception:
                log.exception("task.step_failed", owner=self.owner, task=name)
            await asyncio.sleep(interval)

    async def _restarting(
        self, loop: Callable[[], Awaitable[None]], name: str, backoff: Backoff
    ) -> None:
        wait = backoff.first
        while True:
            started = time.monotonic()
            try:
                await loop()
                return
            except Exception:
                if time.monotonic() - started > backoff.most:
                    wait = backoff.first
                log.exception("task.restarting", owner=self.owner, task=name, after_secs=wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, backoff.most)
