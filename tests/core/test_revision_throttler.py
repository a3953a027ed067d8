"""The slot bracket of a RevisionThrottler, against a pod backend that starts pods
instantly (the port's contract, without processes): given back when the
block ends, abandoned when a timeout or a cancellation cuts it off, and
queued when no pod has room."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ignite_server.core.revision_throttler import RevisionThrottler
from ignite_server.domain.errors import Unavailable
from ignite_server.domain.models import Resources, ScaleMetric, Scaling
from ignite_server.ports.pod_backend import PodSpec
from tests.core.fakes import InstantBackend
from tests.eventually import eventually_async

SPEC = PodSpec(
    app_id="acme/unit",
    version=1,
    artifact_dir=Path("/nonexistent"),
    env={},
    resources=Resources(memory_mb=256, cpu_millicores=250, timeout_secs=5),
    max_concurrency=1,
)
SCALING = Scaling(
    max_replicas=1,
    reserved_capacity=0,
    scale_threshold=1,
    scale_metric=ScaleMetric.CONCURRENCY,
    scaledown_period_secs=300,
)


def _deadline(secs: float = 5.0) -> float:
    return asyncio.get_running_loop().time() + secs


async def _revision(backend: InstantBackend) -> RevisionThrottler:
    return RevisionThrottler(SPEC, SCALING, backend, queue_depth=4)


async def test_a_slot_is_given_back_when_the_block_ends() -> None:
    backend = InstantBackend()
    revision = await _revision(backend)
    try:
        async with revision.slot(_deadline()) as slot:
            assert slot.in_flight == 1 and revision.in_flight == 1
        assert revision.in_flight == 0 and not slot.draining
        # An ordinary error ends the block too: given back, pod kept.
        with pytest.raises(ValueError):
            async with revision.slot(_deadline()) as again:
                raise ValueError("the handler answered badly")
        assert again is slot and slot.in_flight == 0 and not slot.draining
        assert len(backend.pods) == 1 and backend.pods[0].stops == 0
    finally:
        await revision.close()


#: How a block is cut off: its deadline, its caller's cancellation, or its
#: consumer closing the generator the block is held in (GeneratorExit).
@pytest.mark.parametrize("cut_off", [TimeoutError, asyncio.CancelledError, GeneratorExit])
async def test_a_slot_cut_off_is_abandoned_and_its_pod_stopped(cut_off: type) -> None:
    backend = InstantBackend()
    revision = await _revision(backend)
    try:
        with pytest.raises(cut_off):
            async with revision.slot(_deadline()) as slot:
                raise cut_off()
        # The handler may still run: the pod takes nothing new and, running
        # nothing else, is stopped.
        assert slot.stuck == 1 and slot.draining
        await eventually_async(lambda: backend.pods[0].stops == 1, what="the pod stopped")
        # The next request gets a fresh pod.
        async with revision.slot(_deadline()) as fresh:
            assert fresh is not slot
        assert len(backend.pods) == 2
    finally:
        await revision.close()


async def test_a_request_with_no_room_waits_for_the_slot() -> None:
    backend = InstantBackend()
    revision = await _revision(backend)
    order: list[str] = []
    try:
        first = revision.slot(_deadline())
        held = await first.__aenter__()

        async def second() -> None:
            async with revision.slot(_deadline()) as slot:
                order.append("second")
                assert slot is held

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.05)
        assert revision.waiting == 1 and order == []
        order.append("first done")
        await first.__aexit__(None, None, None)
        await waiting
        assert order == ["first done", "second"]
        assert len(backend.pods) == 1
    finally:
        await revision.close()


async def test_no_pod_by_the_deadline_is_unavailable() -> None:
    revision = await _revision(InstantBackend(stuck=True))
    try:
        with pytest.raises(Unavailable) as caught:
            async with revision.slot(_deadline(0.05)):
                raise AssertionError("no slot was free")
        assert caught.value.reason == "ACTIVATION_TIMEOUT"
        assert revision.waiting == 0
    finally:
        await revision.close()
