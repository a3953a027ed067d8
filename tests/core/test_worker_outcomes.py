"""The worker pool's outcome table (core/worker.py, docs/executions.md), row
by row, through the whole pool: claimed from a fake execution store
(tests/core/fake_stores.py), run on a fake app runner, retried with its
back-off, recorded with its status, error_class and metrics. The table in
the docs is checked against what the pool does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ignite_server.core import worker
from ignite_server.core.worker import ExecutionWorkers
from ignite_server.domain.errors import (
    DeadlineExceeded,
    IgniteError,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from ignite_server.domain.models import (
    App,
    Execution,
    ExecutionStatus,
    InvocationRequest,
    ResponseChunk,
    ResponseFrame,
    ResponseHead,
    ResponseTrailer,
    RunTarget,
    StorageMode,
    Submission,
)
from tests.core.conftest import make_target
from tests.core.fake_stores import InMemoryExecutionStore
from tests.eventually import eventually_async

DOCS = Path(__file__).resolve().parents[2] / "docs" / "executions.md"

#: What the fake runner does for one attempt: answer (status, body), or raise.
Attempt = tuple[int, bytes] | IgniteError


class ScriptedRunner:
    """Runs each attempt of an execution as the next step of its script
    (the last step repeats); counts attempts; ``hold`` keeps them running."""

    def __init__(self, target: RunTarget, script: list[Attempt]) -> None:
        self.target = target
        self.script = script
        self.attempts = 0
        self.hold = asyncio.Event()
        self.hold.set()
        self.stopped = 0

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
        if isinstance(self.script[0], NotFound):
            raise self.script[0]
        return self.target

    async def stream(
        self, target: RunTarget, request: InvocationRequest, execution_id: str
    ) -> AsyncGenerator[ResponseFrame, None]:
        step = self.script[min(self.attempts, len(self.script) - 1)]
        self.attempts += 1
        try:
            await self.hold.wait()
        except asyncio.CancelledError:
            self.stopped += 1
            raise
        if isinstance(step, IgniteError):
            raise step
        status, body = step
        yield ResponseHead(status, {}, execution_id)
        yield ResponseChunk(body)
        yield ResponseTrailer(len(body), 5, cold_start_ms=3, cpu_used_ms=2, memory_used_mb=40)


class Apps:
    """The app store, as the worker reads it (cancelled executions)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def get_app(self, organization: str, name: str) -> App:
        return self.app


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries after 20 ms instead of 0.5 s (the doubling is what is shown)."""
    monkeypatch.setattr(worker, "RETRY_BACKOFF_SECS", 0.02)


Run = Callable[..., Any]


@pytest.fixture
async def run(tmp_path: Path, fast_retries: None) -> AsyncIterator[Run]:
    """Submit one execution to a pool running ``script``; its end."""
    pools: list[ExecutionWorkers] = []

    async def submit_and_wait(
        script: list[Attempt], *, storage: StorageMode = StorageMode.PERSISTENT, **kw: Any
    ) -> tuple[Execution, ScriptedRunner, InMemoryExecutionStore]:
        target = make_target(tmp_path)
        if storage != StorageMode.PERSISTENT:
            app = target.app.__class__(
                **{**target.app.__dict__, "storage_mode": storage, "ttl_seconds": 60}
            )
            target = RunTarget(app, target.version, target.resources, target.artifact_dir)
        runner = ScriptedRunner(target, script)
        store = InMemoryExecutionStore({(target.app.organization, target.app.name)})

        async def no_news(channel: str, seconds: float) -> None:
            await asyncio.sleep(min(seconds, 0.01))

        pool = ExecutionWorkers(
            store,
            Apps(target.app),
            runner,
            runner,
            no_news,
            workers=2,
            lease_secs=0.3,
            **kw,  # type: ignore[arg-type]
        )
        pools.append(pool)
        execution, _ = await store.submit(
            "01JOUTCOME000000000000000A",
            Submission(
                target.app.organization,
                target.app.name,
                InvocationRequest("POST", "/", "", {}, b"in"),
            ),
            0,
        )
        await pool.start()

        async def ended() -> Execution | None:
            got = await store.get(target.app.organization, execution.id)
            return got if got.terminal else None

        return await eventually_async(ended, within=10, what="the execution ended"), runner, store

    yield submit_and_wait
    for pool in pools:
        await pool.close()


async def test_an_answer_of_2xx_completes_with_the_result_and_its_metrics(run: Run) -> None:
    ended, runner, _ = await run([(200, b'{"ok": true}')])
    assert ended.status == ExecutionStatus.COMPLETED
    assert (ended.result, ended.status_code, ended.error_class) == (b'{"ok": true}', 200, "")
    assert ended.function_version == 1 and ended.attempts == 1 and runner.attempts == 1
    metrics = ended.metrics
    assert (metrics.cold_start_ms, metrics.cpu_used_ms, metrics.memory_used_mb) == (3, 2, 40)
    assert metrics.billed_duration_ms == metrics.execution_ms + metrics.cold_start_ms
    assert metrics.result_size_bytes == len(b'{"ok": true}')


async def test_an_answer_of_4xx_fails_as_the_clients_and_is_not_retried(run: Run) -> None:
    ended, runner, _ = await run([(422, b'{"error": "name is required"}')])
    assert (ended.status, ended.error_class) == (ExecutionStatus.FAILED, "client")
    assert ended.error == "name is required" and runner.attempts == 1


async def test_an_answer_of_5xx_is_retried_then_fails_as_user_code(run: Run) -> None:
    ended, runner, _ = await run([(500, b'{"error": "boom"}')])
    assert (ended.status, ended.error_class, ended.error) == (
        ExecutionStatus.FAILED,
        "user_code",
        "boom",
    )
    assert runner.attempts == worker.MAX_ATTEMPTS == ended.attempts


async def test_a_retried_execution_that_then_succeeds_completes(run: Run) -> None:
    ended, runner, _ = await run(
        [(503, b"busy"), Unavailable("x", reason="POD_EXITED"), (200, b"ok")]
    )
    assert ended.status == ExecutionStatus.COMPLETED and ended.result == b"ok"
    assert runner.attempts == 3 and ended.attempts == 3


async def test_a_timeout_is_user_code_and_not_retried(run: Run) -> None:
    late = DeadlineExceeded("past its timeout", reason="EXECUTION_TIMEOUT")
    ended, runner, _ = await run([late])
    assert (ended.status, ended.error_class) == (ExecutionStatus.TIMEOUT, "user_code")
    assert runner.attempts == 1


@pytest.mark.parametrize(
    "error",
    [
        Unavailable("the pod exited", reason="POD_EXITED"),
        ResourceExhausted("killed", reason="OUT_OF_MEMORY"),
        Unavailable("no start", reason="ACTIVATION_FAILED"),
    ],
)
async def test_a_pod_that_died_or_could_not_start_is_the_platforms_and_retried(
    run: Run, error: IgniteError
) -> None:
    ended, runner, _ = await run([error])
    assert (ended.status, ended.error_class) == (ExecutionStatus.FAILED, "platform")
    assert runner.attempts == worker.MAX_ATTEMPTS


async def test_an_app_that_is_gone_fails_as_the_clients_without_running(run: Run) -> None:
    ended, runner, _ = await run([NotFound("app gone", reason="APP_NOT_FOUND")])
    assert (ended.status, ended.error_class) == (ExecutionStatus.FAILED, "client")
    assert runner.attempts == 0


async def test_retries_wait_a_doubling_backoff(run: Run) -> None:
    started = asyncio.get_running_loop().time()
    ended, _, _ = await run([(500, b"")])
    # 0.02 s then 0.04 s (the test's base; 0.5 s and 1 s in production).
    assert asyncio.get_running_loop().time() - started >= 0.06
    assert ended.attempts == 3


async def test_a_caller_cancelling_a_running_execution_stops_it(
    tmp_path: Path, fast_retries: None
) -> None:
    target = make_target(tmp_path)
    runner = ScriptedRunner(target, [(200, b"late")])
    runner.hold.clear()
    store = InMemoryExecutionStore({(target.app.organization, target.app.name)})

    async def no_news(channel: str, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.01))

    pool = ExecutionWorkers(store, Apps(target.app), runner, runner, no_news, lease_secs=0.3)  # type: ignore[arg-type]
    submission = Submission(
        target.app.organization, target.app.name, InvocationRequest("POST", "/", "", {}, b"")
    )
    execution, _ = await store.submit("01JCANCEL00000000000000000", submission, 0)
    await pool.start()
    try:
        await eventually_async(lambda: runner.attempts == 1, what="the execution runs")
        await store.request_cancel(target.app.organization, execution.id, 1)

        async def cancelled() -> bool:
            got = await store.get(target.app.organization, execution.id)
            return got.status == ExecutionStatus.CANCELLED

        await eventually_async(cancelled, within=5, what="the execution was cancelled")
        assert runner.stopped == 1 and runner.attempts == 1
    finally:
        await pool.close()


async def test_a_pending_execution_cancelled_never_runs(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    store = InMemoryExecutionStore({(target.app.organization, target.app.name)})
    submission = Submission(
        target.app.organization, target.app.name, InvocationRequest("POST", "/", "", {}, b"")
    )
    execution, _ = await store.submit("01JPENDING0000000000000000", submission, 0)
    cancelled = await store.request_cancel(target.app.organization, execution.id, 5)
    assert cancelled.status == ExecutionStatus.CANCELLED and cancelled.completed_at_ms == 5
    assert await store.claim("w", 10, 1000, 10, 3) == []


def test_the_documented_table_is_what_the_pool_does() -> None:
    """docs/executions.md's rows agree with answer_outcome/failure_outcome."""
    rows = {}
    for line in DOCS.read_text().splitlines():
        cells = [c.strip().replace("`", "") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1] in ExecutionStatus.__members__:
            rows[cells[0]] = (cells[1], cells[2], cells[3] == "yes")
    said = {
        "the handler answered 1xx\u20133xx": worker.answer_outcome(200),
        "the handler answered 4xx": worker.answer_outcome(404),
        "the handler answered 5xx (an exception, an Err, a panic)": worker.answer_outcome(500),
        "it ran past the app's timeout_secs": worker.failure_outcome(
            DeadlineExceeded("late", reason="EXECUTION_TIMEOUT")
        ),
        "the pod died or could not start": worker.failure_outcome(
            Unavailable("gone", reason="POD_EXITED")
        ),
        "the app or the requested version is gone": worker.failure_outcome(
            NotFound("gone", reason="APP_NOT_FOUND")
        ),
    }
    for row, (status, error_class, retried) in said.items():
        assert rows[row] == (status.name, error_class, retried), row
    assert rows["a caller cancelled it"][0] == "CANCELLED"
