"""The Activator against fake pods (tests/core/fakes.py), for what does not
need a sandbox to show: what a pod receives and what comes back
(core/pod_proxy.py), what an invocation records (core/invocation_meter.py),
and how requests are held, queued and failed while pods start
(core/revision_throttler.py). tests/core/test_activator.py shows the same
paths with real sandboxed pods."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from ignite_server.core.activator import Activator
from ignite_server.core.capacity import PodCapacity
from ignite_server.core.pod_proxy import CHUNK_BYTES
from ignite_server.core.revision_throttler import FAILED_RETRY_SECS
from ignite_server.domain.errors import DeadlineExceeded, ResourceExhausted, Unavailable
from ignite_server.domain.models import DeploymentState, InvocationRequest, RunTarget
from ignite_server.domain.quotas import Quotas
from ignite_server.ports.pod_backend import ExitReason
from ignite_server.ports.pod_protocol import EXECUTION_ID_HEADER
from tests.core.conftest import call, make_target
from tests.core.fakes import POD, Handler, HttpBackend, HttpPod, InstantBackend
from tests.eventually import eventually_async


async def echo(request: web.Request) -> web.StreamResponse:
    """Answers with what it received, as JSON."""
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": dict(request.headers),
            "body": body.decode(errors="replace"),
            "pod": request[POD].id,
        },
        headers={"X-Answer": "yes", "Set-Cookie": "a=1"},
    )


@pytest.fixture
def backend_for(tmp_path: Path) -> Callable[[Handler], HttpBackend]:
    return lambda handler: HttpBackend(tmp_path, handler)


@pytest.fixture
async def activator(tmp_path: Path) -> AsyncIterator[Activator]:
    running = Activator(HttpBackend(tmp_path, echo), owns_backend=True)
    yield running
    await running.close()


def _count(target: RunTarget, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "ignite_invocations_total",
        {
            "organization": target.app.organization,
            "app": target.app.id,
            "version": str(target.version.version),
            "path": "grpc",
            "outcome": outcome,
        },
    )
    return value or 0.0


async def test_the_pod_gets_the_users_request_with_the_execution_id(
    activator: Activator, tmp_path: Path
) -> None:
    target = make_target(tmp_path)
    answer = await call(
        activator,
        target,
        b"hello",
        method="PUT",
        path="items/7",
        headers={
            "X-Custom": "kept",
            "Connection": "close",
            "Transfer-Encoding": "chunked",
            EXECUTION_ID_HEADER: "forged-by-the-caller",
        },
        execution_id="01JEXECUTION0000000000000A",
    )
    seen = answer.json()
    assert isinstance(seen, dict)
    assert (seen["method"], seen["path"], seen["body"]) == ("PUT", "/items/7", "hello")
    assert seen["headers"]["X-Custom"] == "kept"
    # The platform's id, never the caller's; hop-by-hop headers stay behind.
    assert seen["headers"][EXECUTION_ID_HEADER] == "01JEXECUTION0000000000000A"
    assert "Transfer-Encoding" not in seen["headers"]
    assert answer.execution_id == "01JEXECUTION0000000000000A"
    assert answer.headers["X-Answer"] == "yes"
    assert "Content-Length" not in answer.headers


async def test_a_query_reaches_the_pod(tmp_path: Path) -> None:
    activator = Activator(HttpBackend(tmp_path, echo), owns_backend=True)
    try:
        frames = activator.invoke(
            make_target(tmp_path),
            InvocationRequest("GET", "/search", "q=ignite&n=2", {}, b""),
            "01JQUERY00000000000000000A",
        )
        chunks = [f async for f in frames]
        body = b"".join(getattr(c, "data", b"") for c in chunks)
        assert json.loads(body)["query"] == "q=ignite&n=2"
    finally:
        await activator.close()


async def test_a_large_answer_streams_in_bounded_chunks(
    backend_for: Callable[[Handler], HttpBackend], tmp_path: Path
) -> None:
    payload = bytes(range(256)) * 4096 * 3  # 3 MiB

    async def large(request: web.Request) -> web.StreamResponse:
        return web.Response(body=payload, content_type="application/octet-stream")

    activator = Activator(backend_for(large), owns_backend=True)
    try:
        answer = await call(activator, make_target(tmp_path))
        assert answer.body == payload
        assert max(answer.chunk_sizes) <= CHUNK_BYTES and len(answer.chunk_sizes) >= 48
        assert answer.trailer.total_body_bytes == len(payload)
    finally:
        await activator.close()


async def test_an_answer_is_counted_by_its_status(
    backend_for: Callable[[Handler], HttpBackend], tmp_path: Path
) -> None:
    async def by_path(request: web.Request) -> web.StreamResponse:
        return web.Response(status=int(request.path.strip("/")))

    activator = Activator(backend_for(by_path), owns_backend=True)
    target = make_target(tmp_path)
    try:
        for status in (200, 404, 500):
            answer = await call(activator, target, path=f"/{status}")
            assert answer.status == status
    finally:
        await activator.close()
    assert _count(target, "ok") == 1
    assert _count(target, "client_error") == 1
    assert _count(target, "handler_error") == 1


async def test_the_first_request_is_a_cold_start_and_the_next_is_warm(
    activator: Activator, tmp_path: Path
) -> None:
    target = make_target(tmp_path)
    throttler_before = activator.throttler(target)
    assert throttler_before is None
    cold = await call(activator, target)
    warm = await call(activator, target)
    assert cold.trailer.cold_start_ms >= 0
    cold_count = REGISTRY.get_sample_value(
        "ignite_cold_starts_total", {"organization": target.app.organization, "app": target.app.id}
    )
    assert cold_count == 1
    assert warm.trailer.cold_start_ms == 0
    throttler = activator.throttler(target)
    assert throttler is not None and throttler.activations == 1
    assert activator.status(target.app.id).state == DeploymentState.DEPLOYED


async def test_concurrent_cold_requests_share_one_activation(
    backend_for: Callable[[Handler], HttpBackend], tmp_path: Path
) -> None:
    release = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(text=request[POD].id)

    activator = Activator(backend_for(held), owns_backend=True)
    target = make_target(tmp_path, max_concurrency=20, max_replicas=1)
    try:
        calls = [asyncio.create_task(call(activator, target)) for _ in range(20)]
        await asyncio.sleep(0.1)
        release.set()
        answers = await asyncio.gather(*calls)
        assert {a.body for a in answers} == {b"pod0"}
        throttler = activator.throttler(target)
        assert throttler is not None
        assert throttler.activations == 1 and throttler.pods_started == 1
    finally:
        await activator.close()


async def test_a_full_queue_answers_resource_exhausted(
    backend_for: Callable[[Handler], HttpBackend], tmp_path: Path
) -> None:
    release = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(text="done")

    backend = backend_for(held)
    activator = Activator(backend, owns_backend=True, queue_depth=2)
    target = make_target(tmp_path, max_concurrency=1, max_replicas=1)
    try:
        running = [asyncio.create_task(call(activator, target))]
        await eventually_async(lambda: backend.pods and backend.pods[0].running == 1)
        # One runs on the only pod, two wait for it: the queue is full.
        running += [asyncio.create_task(call(activator, target)) for _ in range(2)]
        throttler = activator.throttler(target)
        assert throttler is not None
        await eventually_async(lambda: throttler.waiting == 2)
        with pytest.raises(ResourceExhausted) as refused:
            await call(activator, target)
        assert refused.value.reason == "QUEUE_FULL"
        release.set()
        assert [a.body for a in await asyncio.gather(*running)] == [b"done"] * 3
    finally:
        await activator.close()
    assert _count(target, "queue_full") == 1


async def test_a_pod_that_cannot_start_fails_its_requests_then_fails_fast(
    tmp_path: Path,
) -> None:
    backend = InstantBackend(failing="ImportError: no module named 'missing'")
    activator = Activator(backend, owns_backend=True)
    target = make_target(tmp_path)
    try:
        with pytest.raises(Unavailable) as first:
            await call(activator, target)
        assert first.value.reason == "ACTIVATION_FAILED"
        assert "no module named 'missing'" in first.value.message
        status = activator.status(target.app.id)
        assert status.state == DeploymentState.FAILED
        assert "no module named" in status.message
        # Within FAILED_RETRY_SECS the next request fails at once, no new start.
        backend.failing = ""
        with pytest.raises(Unavailable):
            await call(activator, target)
        assert not backend.pods
        assert FAILED_RETRY_SECS > 0.5
    finally:
        await activator.close()


async def test_no_pod_by_the_activation_deadline_is_unavailable(tmp_path: Path) -> None:
    activator = Activator(InstantBackend(stuck=True), activation_timeout_secs=0.1)
    target = make_target(tmp_path)
    try:
        with pytest.raises(Unavailable) as waited:
            await call(activator, target)
        assert waited.value.reason == "ACTIVATION_TIMEOUT"
        assert activator.status(target.app.id).state == DeploymentState.ACTIVATING
    finally:
        await activator.close()
    assert _count(target, "unavailable") == 1


async def test_a_handler_past_its_timeout_is_cut_off_and_its_pod_stopped(
    backend_for: Callable[[Handler], HttpBackend], tmp_path: Path
) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3600)
        raise AssertionError("never answers")

    backend = backend_for(slow)
    activator = Activator(backend, owns_backend=True)
    target = make_target(tmp_path, timeout_secs=1)
    try:
        with pytest.raises(DeadlineExceeded) as late:
            await call(activator, target)
        assert late.value.reason == "EXECUTION_TIMEOUT"
        assert "timeout of 1s" in late.value.message
        pod = backend.pods[0]
        await eventually_async(lambda: pod.exit is not None, what="the stuck pod stopped")
    finally:
        await activator.close()
    assert _count(target, "timeout") == 1


@pytest.mark.parametrize(
    ("reason", "error", "code"),
    [
        (ExitReason.OUT_OF_MEMORY, ResourceExhausted, "OUT_OF_MEMORY"),
        (ExitReason.KILLED, Unavailable, "POD_EXITED"),
    ],
)
async def test_a_pod_dying_under_a_request_fails_it_with_the_reason(
    backend_for: Callable[[Handler], HttpBackend],
    tmp_path: Path,
    reason: ExitReason,
    error: type,
    code: str,
) -> None:
    async def dies(request: web.Request) -> web.StreamResponse:
        pod = request[POD]
        assert isinstance(pod, HttpPod)
        pod.die(reason, "was killed for going past its memory limit")
        # The process is gone: its connection breaks mid-answer.
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    activator = Activator(backend_for(dies), owns_backend=True)
    target = make_target(tmp_path)
    try:
        with pytest.raises(error) as failed:
            await call(activator, target)
        assert failed.value.reason == code
    finally:
        await activator.close()
    assert _count(target, "pod_failure") == 1


async def test_retired_versions_drain_while_the_new_one_serves(
    backend_for: Callable[[Handler], HttpBackend], tmp_path: Path
) -> None:
    release = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        if request.path == "/hold":
            await release.wait()
        return web.Response(text=request[POD].id)

    backend = backend_for(held)
    activator = Activator(backend, owns_backend=True)
    v1 = make_target(tmp_path, name="drained", version=1)
    v2 = make_target(tmp_path, name="drained", version=2)
    try:
        running = asyncio.create_task(call(activator, v1, path="/hold"))
        await eventually_async(lambda: backend.pods and backend.pods[0].running == 1)
        await activator.retire(v1.app.id, keep_version=2)
        assert activator.throttler(v1) is None
        assert (await call(activator, v2)).body == b"pod1"
        # The old version's request finishes on its pod, then the pod stops.
        assert backend.pods[0].exit is None
        release.set()
        assert (await running).body == b"pod0"
        await eventually_async(lambda: backend.pods[0].exit is not None, what="v1's pod stopped")
        assert backend.pods[1].exit is None
    finally:
        await activator.close()
    assert all(pod.exit is not None for pod in backend.pods)


async def test_the_readiness_gate_starts_one_pod_and_a_split_keeps_its_versions(
    backend_for: Callable[[Handler], HttpBackend], tmp_path: Path
) -> None:
    backend = backend_for(echo)
    activator = Activator(backend, owns_backend=True)
    v1 = make_target(tmp_path, name="split", version=1)
    v2 = make_target(tmp_path, name="split", version=2)
    v3 = make_target(tmp_path, name="split", version=3)
    try:
        # prepare: one pod of the version, started and ready, and kept.
        await activator.prepare(v2, timeout_secs=10)
        assert len(backend.pods) == 1 and backend.pods[0].exit is None
        throttler = activator.throttler(v2)
        assert throttler is not None and throttler.ready_replicas == 1
        await call(activator, v1)
        await call(activator, v3)
        # retire with the versions of a split keeps each of them.
        await activator.retire(v1.app.id, keep_version=(1, 2))
        assert activator.throttler(v1) is not None and activator.throttler(v2) is not None
        assert activator.throttler(v3) is None
        assert (await call(activator, v2)).status == 200
    finally:
        await activator.close()


async def test_after_close_nothing_runs_and_new_requests_are_refused(
    activator: Activator, tmp_path: Path
) -> None:
    target = make_target(tmp_path)
    await call(activator, target)
    backend = activator.backend
    assert isinstance(backend, HttpBackend)
    await activator.close()
    assert backend.closed and all(pod.exit is not None for pod in backend.pods)
    with pytest.raises(Unavailable) as refused:
        await call(activator, target)
    assert refused.value.reason == "SHUTTING_DOWN"


async def test_idle_pods_make_room_for_new_ones_and_busy_or_reserved_pods_stay(
    backend_for: Callable[[Handler], HttpBackend], tmp_path: Path
) -> None:
    """The machine holds three 256 MiB pods. Idle pods are a cache: a pod
    that does not fit stops the longest idle one, of any organization; a
    reserved pod and a busy one are never taken, so with nothing else idle
    the start is refused with CAPACITY."""
    gate = asyncio.Event()

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path == "/hold":
            await gate.wait()
        return web.Response(text="ok")

    capacity = PodCapacity(768, Quotas())
    activator = Activator(backend_for(answer), owns_backend=True, capacity=capacity)
    reserved = make_target(tmp_path, org="globex", reserved_capacity=1)
    first, second = make_target(tmp_path, org="acme"), make_target(tmp_path, org="acme")
    newcomer = make_target(tmp_path, org="initech")

    def pods(target: RunTarget) -> int:
        throttler = activator.throttler(target)
        return throttler.ready_replicas if throttler is not None else 0

    try:
        for target in (reserved, first, second):
            assert (await call(activator, target)).status == 200
        assert capacity.used_mb == 768
        assert (await call(activator, newcomer)).status == 200
        assert (pods(reserved), pods(first), pods(second), pods(newcomer)) == (1, 0, 1, 1)
        assert capacity.used_mb == 768
        # Busy pods stay: with second's and newcomer's pods running requests
        # and globex's reserved, first finds no room.
        held = [asyncio.create_task(call(activator, t, path="/hold")) for t in (second, newcomer)]
        await eventually_async(lambda: activator.throttler(second).in_flight == 1, what="busy")
        await eventually_async(lambda: activator.throttler(newcomer).in_flight == 1, what="busy")
        with pytest.raises(ResourceExhausted) as refused:
            await call(activator, first)
        assert refused.value.reason == "CAPACITY"
        assert (pods(reserved), pods(second), pods(newcomer)) == (1, 1, 1)
        gate.set()
        assert [(await h).status for h in held] == [200, 200]
    finally:
        gate.set()
        await activator.close()
