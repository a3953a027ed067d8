"""A consumer that stops reading an invocation before its trailer cuts it
off: the pod, whose handler may still be running, is abandoned (it takes
nothing new and is stopped), never counted free.

The two ways it happens in the server: a gRPC client hanging up between
frames (grpc finalizes the servicer's generator), and the execution worker
returning from inside its loop over the frames when a result is larger than
it stores. Pods here are in-process HTTP handlers (tests/core/fakes.py)
that stream until they are stopped, so "still running" is observable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_server.api.compute_service import ComputeService
from ignite_server.api.grpc_server import COMPUTE_SERVICE
from ignite_server.api.rpc_boundary import generic_handler
from ignite_server.core.activator import Activator
from ignite_server.core.invocations import Invocations
from ignite_server.core.revision_throttler import PodSlot
from ignite_server.core.worker import MAX_RESULT_BYTES, ExecutionWorkers
from ignite_server.domain.models import (
    ExecutionStatus,
    InvocationRequest,
    ResponseChunk,
    ResponseHead,
    RunTarget,
    Submission,
)
from ignite_server.domain.principal import LOCAL_ADMIN, Principal
from tests.core.conftest import make_target
from tests.core.fake_stores import InMemoryExecutionStore
from tests.core.fakes import HttpBackend
from tests.eventually import eventually_async

#: What the endless handler sends before each pause.
PIECE = b"x" * 1024 * 1024


async def endless(request: web.Request) -> web.StreamResponse:
    """A handler that streams a MiB every few milliseconds until its pod is
    stopped: one that is still running when its consumer stops reading."""
    response = web.StreamResponse()
    await response.prepare(request)
    try:
        while True:
            await response.write(PIECE)
            await asyncio.sleep(0.005)
    except ConnectionError:  # the platform hung up on it
        return response


class FixedTargets:
    """RunTargets that always resolve to one target."""

    def __init__(self, target: RunTarget) -> None:
        self.target = target

    async def resolve(
        self,
        organization: str,
        name: str,
        version: int = 0,
        draft: bool = False,
        *,
        tag: str = "",
        sticky_key: str = "",
    ) -> RunTarget:
        return self.target


@pytest.fixture
async def activator(tmp_path: Path) -> AsyncIterator[Activator]:
    running = Activator(HttpBackend(tmp_path, endless), owns_backend=True)
    yield running
    await running.close()


def _only_slot(activator: Activator, target: RunTarget) -> PodSlot:
    throttler = activator.throttler(target)
    assert throttler is not None
    (slot,) = throttler.slots
    return slot


def _assert_abandoned_at_once(activator: Activator, target: RunTarget) -> None:
    """The consumer's close abandoned the slot there and then, not whenever
    the garbage collector would finalize the generator."""
    slot = _only_slot(activator, target)
    assert slot.stuck == 1 and slot.draining, "the pod was counted free while its handler ran"


async def _assert_pod_stopped(activator: Activator) -> None:
    """The pod whose handler was cut off is stopped (a released one would
    stay up, warm and free, with its handler still streaming)."""
    backend = activator.backend
    assert isinstance(backend, HttpBackend)
    pod = backend.pods[0]
    await eventually_async(lambda: pod.exit is not None, within=5, what="the pod stopped")
    assert pod.stops == 1 and pod.running == 0


def _request(body: bytes = b"") -> InvocationRequest:
    return InvocationRequest("POST", "/", "", {}, body)


async def test_closing_the_frames_before_the_trailer_abandons_the_pod(
    activator: Activator, tmp_path: Path
) -> None:
    target = make_target(tmp_path)
    frames = activator.invoke(target, _request(), "01JHANGUP0000000000000000A")
    assert isinstance(await anext(frames), ResponseHead)
    assert isinstance(await anext(frames), ResponseChunk)
    await frames.aclose()
    _assert_abandoned_at_once(activator, target)
    await _assert_pod_stopped(activator)
    # The next invocation gets a pod of its own.
    again = activator.invoke(target, _request(), "01JHANGUP0000000000000000B")
    assert isinstance(await anext(again), ResponseHead)
    await again.aclose()
    backend = activator.backend
    assert isinstance(backend, HttpBackend)
    assert len(backend.pods) == 2


class _Context:
    """What the RPC edge reads of a grpc.aio ServicerContext."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    async def abort(self, code: Any, details: str, trailing_metadata: Any = ()) -> None:
        raise AssertionError(f"the call failed: {code} {details}")


async def test_a_grpc_client_hanging_up_between_frames_abandons_the_pod(
    activator: Activator, tmp_path: Path
) -> None:
    target = make_target(tmp_path)
    invocations = Invocations(None, FixedTargets(target), activator)  # type: ignore[arg-type]
    service = ComputeService(None, None, invocations, None, None, None, None)  # type: ignore[arg-type]

    async def as_admin(header: str | None) -> Principal:
        return LOCAL_ADMIN

    async def exists(organization: str) -> bool:
        return True

    rpc = generic_handler(COMPUTE_SERVICE, service, as_admin, exists).service(
        SimpleNamespace(method="/dodil.ignite.v1.ComputeService/Invoke")
    )
    assert rpc is not None
    raw = compute.InvokeRequest(organization_name="acme-corp", app_name=target.app.name)
    # What grpc.aio runs for the call; when the client goes away between
    # frames, grpc stops iterating it and it is finalized.
    frames = rpc.unary_stream(raw.SerializeToString(), _Context())
    head = await anext(frames)
    assert head.HasField("head") and head.head.status_code == 200
    assert (await anext(frames)).HasField("chunk")
    await frames.aclose()
    _assert_abandoned_at_once(activator, target)
    await _assert_pod_stopped(activator)


class _Apps:
    """The app store the worker reads (only for cancelled executions)."""

    async def get_app(self, organization: str, name: str) -> Any:
        raise AssertionError("not read by these tests")


async def test_a_result_over_the_limit_ends_the_execution_and_abandons_the_pod(
    activator: Activator, tmp_path: Path
) -> None:
    target = make_target(tmp_path)
    store = InMemoryExecutionStore({(target.app.organization, target.app.name)})
    targets = FixedTargets(target)
    invocations = Invocations(None, targets, activator)  # type: ignore[arg-type]

    async def no_news(channel: str, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.02))

    workers = ExecutionWorkers(
        store,
        _Apps(),  # type: ignore[arg-type]
        targets,  # type: ignore[arg-type]
        invocations,
        no_news,
        workers=1,
    )
    submission = Submission(target.app.organization, target.app.name, _request())
    execution, _ = await store.submit("01JHANGUP0000000000000000C", submission, 0)
    await workers.start()
    try:

        async def ended() -> bool:
            return (await store.get(target.app.organization, execution.id)).terminal

        await eventually_async(ended, within=20, what="the execution ended")
    finally:
        await workers.close()
    ended_as = await store.get(target.app.organization, execution.id)
    assert ended_as.status == ExecutionStatus.FAILED
    assert ended_as.error_class == "user_code"
    assert f"larger than {MAX_RESULT_BYTES} bytes" in ended_as.error
    await _assert_pod_stopped(activator)
