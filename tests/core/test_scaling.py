"""Activation and scaling with real pods: scale-out bounds, scale to zero,
reserved capacity, the bounded queue, activation failures and deadlines,
and retiring versions without failing requests in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from ignite_server.core.activator import Activator
from ignite_server.domain.errors import ResourceExhausted, Unavailable
from ignite_server.domain.models import DeploymentState, RunTarget, ScaleMetric
from tests.core.conftest import Builder, call, make_target
from tests.eventually import eventually_async
from tests.support import local_invoker

SLEEPY = """import time

def handler(payload, ctx):
    time.sleep(float(payload or 0))
    return {"pid_slept": float(payload or 0)}
"""


async def _wait_for(predicate: Callable[[], bool], within: float) -> None:
    # Polling: the state comes from the autoscaler's own clock, no event.
    await eventually_async(predicate, within=within, every=0.05)


async def test_load_scales_up_to_max_replicas_never_beyond_and_back_to_zero(
    invoker: Activator, build: Builder
) -> None:
    target = make_target(
        await build({"handler.py": SLEEPY}),
        max_concurrency=1,
        max_replicas=3,
        scale_threshold=1,
        scale_metric=ScaleMetric.CONCURRENCY,
        scaledown_period_secs=1,
    )
    peak = 0
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            revision = invoker.throttler(target)
            if revision is not None:
                peak = max(peak, revision.ready_replicas + revision.starting)
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    answers = await asyncio.gather(*(call(invoker, target, b"0.3") for _ in range(12)))
    sampling = False
    await sampler
    assert [a.status for a in answers] == [200] * 12
    assert peak == 3
    revision = invoker.throttler(target)
    assert revision is not None
    assert revision.pods_started == 3
    assert invoker.status(target.app.id).ready_replicas == 3
    # One quiet period later, nothing runs.
    await _wait_for(lambda: invoker.status(target.app.id).state == DeploymentState.COLD, 10)
    assert invoker.status(target.app.id).ready_replicas == 0
    # ... and the next request activates it again.
    assert (await call(invoker, target, b"0")).status == 200
    assert revision.activations == 2


async def test_reserved_capacity_stays_warm(invoker: Activator, build: Builder) -> None:
    target = make_target(
        await build({"handler.py": SLEEPY}), reserved_capacity=2, scaledown_period_secs=1
    )
    await invoker.warm(target)
    await _wait_for(lambda: invoker.status(target.app.id).ready_replicas == 2, 10)
    await asyncio.sleep(2)  # past the scale-down period, still warm
    assert invoker.status(target.app.id).ready_replicas == 2
    await invoker.retire(target.app.id, None)
    assert invoker.status(target.app.id).state is None


async def test_a_full_queue_answers_resource_exhausted(build: Builder, workdir: Path) -> None:
    small = local_invoker(workdir / "state-queue", sandbox="required", queue_depth=2)
    try:
        target = make_target(await build({"handler.py": SLEEPY}), max_concurrency=1, max_replicas=1)
        assert (await call(small, target, b"0")).status == 200  # warm: one pod, one slot
        results = await asyncio.gather(
            *(call(small, target, b"0.5") for _ in range(6)), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, ResourceExhausted)]
        served = [r for r in results if not isinstance(r, BaseException)]
        assert refused and all(r.reason == "QUEUE_FULL" for r in refused)
        # One on the pod's only slot, two in the queue.
        assert len(served) == 3
    finally:
        await small.close()


async def test_an_activation_past_its_deadline_answers_unavailable(
    build: Builder, workdir: Path
) -> None:
    hasty = local_invoker(
        workdir / "state-hasty", sandbox="required", activation_timeout_secs=0.001
    )
    try:
        target = make_target(await build({"handler.py": SLEEPY}))
        with pytest.raises(Unavailable) as caught:
            await call(hasty, target, b"0")
        assert caught.value.reason == "ACTIVATION_TIMEOUT"
    finally:
        await hasty.close()


async def test_an_app_that_cannot_load_fails_its_requests_and_status(
    invoker: Activator, build: Builder
) -> None:
    target = make_target(await build({"handler.py": "def handle(payload, ctx):\n    return 1\n"}))
    results = await asyncio.gather(
        *(call(invoker, target) for _ in range(3)), return_exceptions=True
    )
    for result in results:
        assert isinstance(result, Unavailable)
        assert result.reason == "ACTIVATION_FAILED"
        assert "no function named 'handler'" in result.message
    status = invoker.status(target.app.id)
    assert status.state == DeploymentState.FAILED
    assert "no function named 'handler'" in status.message
    revision = invoker.throttler(target)
    assert revision is not None and revision.activations == 1


async def test_retire_drains_old_pods_without_failing_requests_in_flight(
    invoker: Activator, build: Builder
) -> None:
    artifact = await build({"handler.py": SLEEPY})
    v1 = make_target(artifact, version=1)
    v2: RunTarget = make_target(artifact, name=v1.app.name, version=2)
    assert (await call(invoker, v1, b"0")).status == 200
    old = invoker.throttler(v1)
    assert old is not None
    slow = asyncio.create_task(call(invoker, v1, b"1"))
    await asyncio.sleep(0.2)
    await invoker.retire(v1.app.id, keep_version=2)  # returns at once
    assert not slow.done()
    assert invoker.throttler(v1) is None
    assert (await call(invoker, v2, b"0")).status == 200
    assert (await slow).status == 200
    # Once idle, the old version's pod is stopped.
    await _wait_for(lambda: not old.slots, 10)
    assert invoker.status(v1.app.id).ready_replicas == 1


async def test_request_rate_scales_by_requests_per_second(
    invoker: Activator, build: Builder
) -> None:
    target = make_target(
        await build({"handler.py": SLEEPY}),
        max_concurrency=50,
        max_replicas=5,
        scale_metric=ScaleMetric.REQUEST_RATE,
        scale_threshold=5,
    )
    # 72 quick requests: 12 req/s over the 6 s rate window, 5 per pod → 3 pods,
    # though one pod could hold every request in flight.
    for _ in range(6):
        await asyncio.gather(*(call(invoker, target, b"0") for _ in range(12)))
    await _wait_for(lambda: invoker.status(target.app.id).ready_replicas == 3, 10)
    revision = invoker.throttler(target)
    assert revision is not None and revision.pods_started == 3
