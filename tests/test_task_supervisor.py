"""The one way background tasks are owned (ignite_common/task_supervisor.py):
a crashed loop comes back after a growing back-off, a failing periodic step
does not end its schedule, and closing cancels and awaits every task."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from structlog.testing import capture_logs

from ignite_common.task_supervisor import Backoff, TaskSupervisor, cancel_and_wait
from tests.eventually import eventually_async


async def test_a_crashed_loop_restarts_after_a_growing_backoff_then_ends_when_it_returns() -> None:
    tasks = TaskSupervisor("test")
    runs: list[float] = []

    async def flaky() -> None:
        runs.append(time.monotonic())
        if len(runs) <= 3:
            raise RuntimeError(f"crash {len(runs)}")

    with capture_logs() as logs:
        task = tasks.keep_running(flaky, name="flaky", backoff=Backoff(first=0.05, most=1.0))
        await asyncio.wait_for(task, 5)
    assert len(runs) == 4 and task.exception() is None
    gaps = [later - earlier for earlier, later in itertools.pairwise(runs)]
    # 0.05, 0.1, 0.2: each wait twice the last.
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2, gaps
    restarts = [e for e in logs if e["event"] == "task.restarting"]
    assert [e["after_secs"] for e in restarts] == [0.05, 0.1, 0.2]
    assert all(e["owner"] == "test" and e["task"] == "flaky" for e in restarts)
    assert len(tasks) == 0
    await tasks.close()


async def test_the_backoff_is_capped_and_starts_over_after_a_long_healthy_run() -> None:
    tasks = TaskSupervisor("test")
    runs = 0
    long_run = asyncio.Event()

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs == 4:
            await asyncio.sleep(0.25)  # healthy for longer than the cap
        if runs == 6:
            long_run.set()
            await asyncio.sleep(3600)
        raise RuntimeError("again")

    with capture_logs() as logs:
        tasks.keep_running(loop, name="loop", backoff=Backoff(first=0.02, most=0.08))
        await asyncio.wait_for(long_run.wait(), 5)
    waits = [e["after_secs"] for e in logs if e["event"] == "task.restarting"]
    # Doubling up to the cap; the run that lasted longer than it resets.
    assert waits == [0.02, 0.04, 0.08, 0.02, 0.04], waits
    await tasks.close()


async def test_a_failing_step_is_logged_and_the_schedule_goes_on() -> None:
    tasks = TaskSupervisor("test")
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise ValueError("odd")

    with capture_logs() as logs:
        tasks.every(0.01, step, name="tick", first=True)
        await eventually_async(lambda: calls >= 6, within=5, what="six steps")
    failed = [e for e in logs if e["event"] == "task.step_failed"]
    assert len(failed) >= 3 and all(e["task"] == "tick" for e in failed)
    await tasks.close()


async def test_a_plain_function_can_be_a_step_and_first_waits_for_the_interval() -> None:
    tasks = TaskSupervisor("test")
    seen: list[float] = []
    started = time.monotonic()
    tasks.every(0.05, lambda: seen.append(time.monotonic()), name="tick")
    await eventually_async(lambda: len(seen) >= 2, within=5, what="two steps")
    assert seen[0] - started >= 0.05
    await tasks.close()


async def test_close_cancels_and_awaits_every_task_even_one_that_cleans_up() -> None:
    tasks = TaskSupervisor("test")
    cleaned = asyncio.Event()
    started = asyncio.Event()

    async def holds_a_resource() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.05)  # returning the resource takes a moment
            cleaned.set()

    spawned = tasks.spawn(holds_a_resource(), name="holder")
    periodic = tasks.every(3600, lambda: None, name="idle")
    looping = tasks.keep_running(lambda: asyncio.sleep(3600), name="loop")
    await started.wait()
    await tasks.close()
    # Awaited, not just cancelled: the clean-up ran before close returned.
    assert cleaned.is_set()
    assert all(t.done() and t.cancelled() for t in (spawned, periodic, looping))
    assert len(tasks) == 0 and tasks.closed
    await tasks.close()  # twice is fine
    work = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        tasks.spawn(work, name="late")


async def test_wait_lets_tasks_finish_including_those_they_start() -> None:
    tasks = TaskSupervisor("test")
    finished: list[str] = []

    async def second() -> None:
        await asyncio.sleep(0.02)
        finished.append("second")

    async def first() -> None:
        await asyncio.sleep(0.02)
        tasks.spawn(second(), name="second")
        finished.append("first")

    tasks.spawn(first(), name="first")
    await asyncio.wait_for(tasks.wait(), 5)
    assert finished == ["first", "second"]


async def test_a_crashed_task_is_logged_with_its_owner() -> None:
    tasks = TaskSupervisor("owner-x")

    async def boom() -> None:
        raise KeyError("lost")

    with capture_logs() as logs:
        task = tasks.spawn(boom(), name="boom")
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
    crashed = [e for e in logs if e["event"] == "task.crashed"]
    assert len(crashed) == 1 and crashed[0]["owner"] == "owner-x"
    assert crashed[0]["task"] == "owner-x:boom"


async def test_cancel_and_wait_ends_the_task_and_passes_on_its_callers_cancellation() -> None:
    stopped = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.2)
            stopped.set()

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled() and stopped.is_set()

    inner = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0.05)
    waiter.cancel()  # the caller is cancelled while it waits
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.gather(inner, return_exceptions=True)
