"""Waiting for something to become true, the one way tests wait.

``eventually(check)`` calls ``check`` until it returns something truthy and
returns that; past ``within`` seconds it fails the test, saying ``what`` it
waited for and what ``check`` last returned (or raised). Every wait is
bounded in time. ``eventually_async`` does the same inside a coroutine,
awaiting ``check`` when it is a coroutine function, so the event loop keeps
running what the test waits for.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: How often a check is repeated unless told otherwise.
EVERY_SECS = 0.02


class _Attempts:
    """The bookkeeping both forms share: the deadline and the last answer."""

    def __init__(self, within: float, what: str) -> None:
        self.deadline = time.monotonic() + within
        self.within = within
        self.what = what
        self.last: Any = None

    def record(self, outcome: Any) -> None:
        self.last = outcome

    def give_up(self) -> None:
        if time.monotonic() >= self.deadline:
            what = self.what or "the condition"
            raise AssertionError(
                f"{what} did not hold within {self.within} s (last: {self.last!r})"
            )


def _try(check: Callable[[], Any]) -> Any:
    try:
        return check()
    except AssertionError as failed:
        # A check may assert; its message is the most useful "last".
        return failed


def eventually(
    check: Callable[[], T], *, within: float = 10.0, every: float = EVERY_SECS, what: str = ""
) -> T:
    """Block until ``check()`` is truthy and return it (see the module docstring)."""
    attempts = _Attempts(within, what)
    while True:
        outcome = _try(check)
        if outcome and not isinstance(outcome, AssertionError):
            return outcome  # type: ignore[no-any-return]
        attempts.record(outcome)
        attempts.give_up()
        time.sleep(every)


async def eventually_async(
    check: Callable[[], T | Awaitable[T]],
    *,
    within: float = 10.0,
    every: float = EVERY_SECS,
    what: str = "",
) -> T:
    """Wait, without blocking the loop, until ``check()`` is truthy."""
    attempts = _Attempts(within, what)
    while True:
        outcome = _try(check)
        if inspect.isawaitable(outcome):
            try:
                outcome = await outcome
            except AssertionError as failed:
                outcome = failed
        if outcome and not isinstance(outcome, AssertionError):
            return outcome  # type: ignore[no-any-return]
        attempts.record(outcome)
        attempts.give_up()
        await asyncio.sleep(every)
