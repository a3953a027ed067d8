"""Invocations end to end through the Activator, real sandboxed pods and real
builds: seed 000's handler, errors, timeouts, memory kills, big bodies,
archive apps with dependencies."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import pytest
from ulid import ULID

from ignite_server.core.activator import Activator
from ignite_server.core.pod_proxy import CHUNK_BYTES
from ignite_server.domain.errors import DeadlineExceeded, ResourceExhausted, Unavailable
from ignite_server.domain.models import DeploymentState, LogStream
from ignite_server.ports.pod_backend import PodLogRecord
from tests.core.conftest import Builder, call, make_target
from tests.eventually import eventually_async
from tests.support import SEED_HANDLER

MISC_HANDLER = """import os, time

def handler(payload, ctx):
    cmd = payload[:16].split(b" ")[0]
    if cmd == b"fail":
        raise ValueError("the handler gave up")
    if cmd == b"sleep":
        time.sleep(float(payload.split(b" ")[1]))
        return "slept"
    if cmd == b"alloc":
        hog = bytearray(int(payload.split(b" ")[1]) * 1024 * 1024)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        return "allocated"
    if cmd == b"exit":
        os._exit(3)
    if cmd == b"text":
        return "plain text"
    if cmd == b"spin":
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass
        return "spun"
    return payload
"""


async def test_seed_greet_answers_with_its_execution_id(
    invoker: Activator, build: Builder, app_logs: list[PodLogRecord]
) -> None:
    target = make_target(await build({"handler.py": SEED_HANDLER}), name="greet")
    execution_id = str(ULID())
    answer = await call(invoker, target, b'{"name": "Ada"}', execution_id=execution_id)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    result = answer.json()
    assert isinstance(result, dict)
    assert result["greeting"] == "Hello, Ada!"
    assert result["execution_id"] == execution_id == answer.execution_id
    assert result["function_id"] == "acme-corp/greet"
    assert result["received_at"]

    # print() reaches the app's logs (through a pipe, so shortly after the
    # answer), tagged with this execution.
    def logged() -> bool:
        return any(
            r.execution_id == execution_id
            and r.message == "greeting Ada"
            and r.stream == LogStream.STDOUT
            and r.app_id == "acme-corp/greet"
            for r in app_logs
        )

    await eventually_async(logged, within=5, every=0.01, what="the greeting in the app's logs")


async def test_cold_app_answers_its_first_request(invoker: Activator, build: Builder) -> None:
    target = make_target(await build({"handler.py": SEED_HANDLER}))
    assert invoker.status(target.app.id).state is None
    first = asyncio.create_task(call(invoker, target, b"{}"))
    await asyncio.sleep(0)  # the request is now held while its pod starts
    assert invoker.status(target.app.id).state == DeploymentState.ACTIVATING
    answer = await first
    assert answer.status == 200
    assert answer.trailer.cold_start_ms > 0
    assert answer.trailer.memory_used_mb > 0
    status = invoker.status(target.app.id)
    assert status.state == DeploymentState.DEPLOYED
    assert status.ready_replicas == 1
    warm = await call(invoker, target, b"{}")
    assert warm.trailer.cold_start_ms == 0


async def test_fifty_concurrent_cold_requests_share_one_activation(
    invoker: Activator, build: Builder
) -> None:
    target = make_target(await build({"handler.py": SEED_HANDLER}))
    answers = await asyncio.gather(
        *(call(invoker, target, f'{{"name": "n{i}"}}'.encode()) for i in range(50))
    )
    assert [a.status for a in answers] == [200] * 50
    assert {a.json()["greeting"] for a in answers} == {f"Hello, n{i}!" for i in range(50)}  # type: ignore[index]
    revision = invoker.throttler(target)
    assert revision is not None
    assert revision.activations == 1


async def test_handler_exception_is_a_500_and_the_pod_keeps_serving(
    invoker: Activator, build: Builder
) -> None:
    target = make_target(await build({"handler.py": MISC_HANDLER}))
    failed = await call(invoker, target, b"fail")
    assert failed.status == 500
    assert failed.headers["Content-Type"] == "application/json"
    assert failed.json() == {"error": "ValueError: the handler gave up"}
    after = await call(invoker, target, b"text")
    assert (after.status, after.body) == (200, b"plain text")
    assert after.headers["Content-Type"] == "text/plain; charset=utf-8"
    spun = await call(invoker, target, b"spin")
    assert spun.body == b"spun"
    assert spun.trailer.cpu_used_ms >= 250
    revision = invoker.throttler(target)
    assert revision is not None and revision.pods_started == 1


async def test_a_handler_past_its_timeout_is_cut_off(invoker: Activator, build: Builder) -> None:
    target = make_target(await build({"handler.py": MISC_HANDLER}), timeout_secs=1)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        await call(invoker, target, b"sleep 30")
    assert caught.value.reason == "EXECUTION_TIMEOUT"
    assert time.monotonic() - started < 5
    # The pod that ran it is stopped; the app serves on.
    answer = await call(invoker, target, b"text")
    assert answer.status == 200


async def test_memory_limit_kill_is_reported_and_other_apps_are_unharmed(
    invoker: Activator, build: Builder
) -> None:
    hog = make_target(await build({"handler.py": MISC_HANDLER}), memory_mb=64)
    other = make_target(await build({"handler.py": SEED_HANDLER}))
    assert (await call(invoker, other, b"{}")).status == 200
    with pytest.raises(ResourceExhausted) as caught:
        await call(invoker, hog, b"alloc 200")
    assert caught.value.reason == "OUT_OF_MEMORY"
    assert "memory limit" in caught.value.message
    assert "memory limit" in invoker.status(hog.app.id).message
    # The other app's pod lived through it; the hog gets a fresh pod.
    assert (await call(invoker, other, b"{}")).status == 200
    other_revision = invoker.throttler(other)
    assert other_revision is not None and other_revision.pods_started == 1
    assert (await call(invoker, hog, b"alloc 8")).body == b"allocated"
    # Served again: the old kill is no longer the app's status.
    assert "memory limit" not in invoker.status(hog.app.id).message


async def test_a_pod_dying_mid_request_fails_it_clearly_and_is_replaced(
    invoker: Activator, build: Builder
) -> None:
    target = make_target(await build({"handler.py": MISC_HANDLER}))
    with pytest.raises(Unavailable) as caught:
        await call(invoker, target, b"exit")
    assert caught.value.reason == "POD_EXITED"
    assert "exited with status 3" in caught.value.message
    assert (await call(invoker, target, b"text")).status == 200


async def test_ten_megabyte_bodies_pass_intact(invoker: Activator, build: Builder) -> None:
    target = make_target(await build({"handler.py": MISC_HANDLER}))
    payload = os.urandom(10 * 1024 * 1024)
    answer = await call(invoker, target, payload)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert hashlib.sha256(answer.body).digest() == hashlib.sha256(payload).digest()
    assert max(answer.chunk_sizes) <= CHUNK_BYTES
    assert len(answer.chunk_sizes) > 1


ARCHIVE_APP = {
    "handler.py": (
        "import six\n"
        "from greetings import phrase\n"
        "from greetings.data import WORDS\n\n"
        "def handler(payload, ctx):\n"
        "    return {'text': phrase(payload.decode()), 'words': WORDS,\n"
        "            'six': six.__version__, 'six_at': six.__file__}\n"
    ),
    "greetings/__init__.py": "def phrase(name):\n    return 'Hi ' + name\n",
    "greetings/data.py": "WORDS = ['hi', 'hello']\n",
    "requirements.txt": "six==1.17.0\n",
}


async def test_archive_app_with_its_own_package_and_a_dependency_runs(
    invoker: Activator, build: Builder
) -> None:
    artifact = await build(ARCHIVE_APP)
    answer = await call(invoker, make_target(artifact), b"Ada")
    assert answer.status == 200
    assert answer.json() == {
        "text": "Hi Ada",
        "words": ["hi", "hello"],
        "six": "1.17.0",
        "six_at": "/code/deps/six.py",
    }


CHATTY = """import time

def handler(payload, ctx):
    print("start")
    time.sleep(float(payload))
    print("finished")
    return "done"
"""


async def test_a_cancelled_invocation_is_cut_off_in_its_pod(
    invoker: Activator, build: Builder, app_logs: list[PodLogRecord]
) -> None:
    target = make_target(await build({"handler.py": CHATTY}))
    execution_id = str(ULID())
    running = asyncio.create_task(call(invoker, target, b"5", execution_id=execution_id))

    def said(word: str) -> bool:
        return any(r.execution_id == execution_id and r.message == word for r in app_logs)

    await eventually_async(lambda: said("start"), every=0.01, what="the handler started")
    revision = invoker.throttler(target)
    assert revision is not None and len(revision.slots) == 1
    pod = revision.slots[0].pod
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    # The pod is stopped long before the handler could have finished.
    end = await asyncio.wait_for(pod.wait(), 3)
    assert end.exit_code is not None
    assert not said("finished")
    assert (await call(invoker, target, b"0")).body == b"done"
