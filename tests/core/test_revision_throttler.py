"""The slot bracket of a RevisionThrottler, against a pod backend that starts pods
instantly (the port's contract, without processes): given back when the
block ends, abandoned when a timeout or a cancellation cuts it off, and
queued when no pod has room."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from ignite_server.core.revision_throttler import RevisionThrottler
from ignite_server.domain.errors import Unavailable
from ignite_server.domain.models import Resources, ScaleMetric, Scaling
from ignite_server.ports.pod_backend import (
    BackendInfo,
    ExitReason,
    PodExit,
    PodSpec,
    PodStats,
)

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


class InstantPod:
    """A pod that is ready at once and ends when stopped."""

    def __init__(self, pod_id: str) -> None:
        self.id = pod_id
        self.spec = SPEC
        self.stops = 0
        self._end: asyncio.Future[PodExit] = asyncio.get_running_loop().create_future()

    def connector(self) -> aiohttp.BaseConnector:
        return aiohttp.TCPConnector()

    @property
    def base_url(self) -> str:
        return "http://pod"

    @property
    def exit(self) -> PodExit | None:
        return self._end.result() if self._end.done() else None

    async def wait(self) -> PodExit:
        return await asyncio.shield(self._end)

    @contextlib.contextmanager
    def executing(self, execution_id: str) -> Iterator[None]:
        yield

    def stats(self) -> PodStats:
        return PodStats(0, 0, 0)

    async def stop(self, grace_secs: float = 0) -> PodExit:
        self.stops += 1
        if not self._end.done():
            self._end.set_result(PodExit(ExitReason.STOPPED, 0, "stopped"))
        return self._end.result()


class InstantBackend:
    """Starts InstantPods, or never finishes starting when ``stuck``."""

    def __init__(self, *, stuck: bool = False) -> None:
        self.pods: list[InstantPod] = []
        self.stuck = stuck

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(sandboxed=True)

    async def start(self, spec: PodSpec) -> InstantPod:
        if self.stuck:
            await asyncio.sleep(3600)
        pod = InstantPod(f"pod{len(self.pods)}")
        self.pods.append(pod)
        return pod

    async def close(self) -> None:
        return None


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


@pytest.mark.parametrize("cut_off", [TimeoutError, asyncio.CancelledError])
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
        for _ in range(100):
            if backend.pods[0].stops:
                break
            await asyncio.sleep(0.01)
        assert backend.pods[0].stops == 1
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
