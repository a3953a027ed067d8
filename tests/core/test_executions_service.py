"""Asynchronous invocations as core takes them (core/executions.py,
core/invocations.py, core/completions.py), against fake stores: a
submission is checked before it is stored, idempotent by key, readable,
listable by page and status, cancellable; anonymous callers reach only
public apps; finished executions are written in batches under their lease."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from ignite_server.core.completions import CompletionWriter
from ignite_server.core.executions import MAX_IDEMPOTENCY_KEY_CHARS, ExecutionService
from ignite_server.core.invocations import Invocations
from ignite_server.domain.errors import InvalidArgument, NotFound, Unauthenticated, Unavailable
from ignite_server.domain.models import (
    App,
    ExecutionMetrics,
    ExecutionStatus,
    InvocationRequest,
    RunTarget,
    StorageMode,
    Submission,
)
from ignite_server.domain.principal import ANONYMOUS, LOCAL_ADMIN
from ignite_server.ports.execution_store import ExecutionEnd
from tests.core.conftest import make_target
from tests.core.fake_stores import InMemoryExecutionStore


class Targets:
    """RunTargets over one app; anything else is not found."""

    def __init__(self, target: RunTarget) -> None:
        self.target = target
        #: The tags asked for, in order.
        self.tags: list[str] = []

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
        if (organization, name) != (self.target.app.organization, self.target.app.name):
            raise NotFound(f"app {organization}/{name} not found", reason="APP_NOT_FOUND")
        self.tags.append(tag)
        return self.target


class Apps:
    def __init__(self, app: App) -> None:
        self.app = app

    async def get_app(self, organization: str, name: str) -> App:
        if (organization, name) != (self.app.organization, self.app.name):
            raise NotFound("gone", reason="APP_NOT_FOUND")
        return self.app


def _service(
    tmp_path: Path, **app_changes: object
) -> tuple[ExecutionService, InMemoryExecutionStore, App]:
    target = make_target(tmp_path)
    app = dataclasses.replace(target.app, **app_changes)  # type: ignore[arg-type]
    target = dataclasses.replace(target, app=app)
    store = InMemoryExecutionStore({(app.organization, app.name)})
    return ExecutionService(store, Apps(app), Targets(target)), store, app  # type: ignore[arg-type]


def _submission(app: App, body: bytes = b"{}", **kw: object) -> Submission:
    request = InvocationRequest("POST", "/", "", {}, body)
    return Submission(app.organization, app.name, request, **kw)  # type: ignore[arg-type]


async def test_a_submission_is_stored_pending_with_a_fresh_ulid(tmp_path: Path) -> None:
    service, _, app = _service(tmp_path)
    first = await service.submit(_submission(app))
    second = await service.submit(_submission(app))
    assert first.status == ExecutionStatus.PENDING and first.attempts == 0
    assert len(first.id) == 26 and first.id != second.id
    assert await service.get(app.organization, first.id) == first


async def test_the_same_idempotency_key_returns_the_same_execution(tmp_path: Path) -> None:
    service, store, app = _service(tmp_path)
    first = await service.submit(_submission(app, idempotency_key="order-42"))
    again = await service.submit(_submission(app, b"other", idempotency_key="order-42"))
    assert again.id == first.id and len(store.rows) == 1


@pytest.mark.parametrize(
    ("submission", "reason"),
    [
        (
            lambda app: _submission(app, idempotency_key="k" * (MAX_IDEMPOTENCY_KEY_CHARS + 1)),
            "IDEMPOTENCY_KEY_TOO_LONG",
        ),
        (lambda app: _submission(app, b"x" * (32 * 1024 * 1024 + 1)), "BODY_TOO_LARGE"),
        (
            lambda app: Submission(
                "Bad_Org", app.name, InvocationRequest("POST", "/", "", {}, b"")
            ),
            "INVALID_NAME",
        ),
    ],
)
async def test_what_can_never_be_stored_is_refused_before_it_is(
    tmp_path: Path,
    submission,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    service, store, app = _service(tmp_path)
    with pytest.raises(InvalidArgument) as refused:
        await service.submit(submission(app))
    assert refused.value.reason == reason
    assert not store.rows


async def test_a_tag_is_resolved_at_submission_into_the_version_it_names(
    tmp_path: Path,
) -> None:
    service, store, app = _service(tmp_path)
    targets = service._targets  # type: ignore[attr-defined]
    execution = await service.submit(_submission(app, tag="canary"))
    assert targets.tags == ["canary"]
    assert execution.requested_version == targets.target.version.version != 0
    with pytest.raises(InvalidArgument) as refused:
        await service.submit(_submission(app, tag="canary", version=1))
    assert refused.value.reason == "CONFLICTING_TARGET" and len(store.rows) == 1


async def test_an_unknown_app_is_not_found_and_nothing_is_stored(tmp_path: Path) -> None:
    service, store, app = _service(tmp_path)
    with pytest.raises(NotFound):
        await service.submit(
            Submission(app.organization, "missing", InvocationRequest("POST", "/", "", {}, b""))
        )
    assert not store.rows


async def test_listing_pages_newest_first_and_filters_by_status(tmp_path: Path) -> None:
    service, _, app = _service(tmp_path)
    ids = [(await service.submit(_submission(app))).id for _ in range(5)]
    await service.cancel(app.organization, ids[0])
    page = await service.list(app.organization, app.name, 0, 2, "")
    assert [e.id for e in page.items] == ids[::-1][:2] and page.next_page_token
    rest = await service.list(app.organization, app.name, 0, 2, page.next_page_token)
    assert [e.id for e in rest.items] == ids[::-1][2:4]
    cancelled = await service.list(app.organization, "", int(ExecutionStatus.CANCELLED), 10, "")
    assert [e.id for e in cancelled.items] == [ids[0]]
    with pytest.raises(InvalidArgument):
        await service.list(app.organization, app.name, 99, 10, "")


async def test_another_organization_sees_none_of_them(tmp_path: Path) -> None:
    service, _, app = _service(tmp_path)
    execution = await service.submit(_submission(app))
    with pytest.raises(NotFound):
        await service.get("other-org", execution.id)
    assert (await service.list("other-org", "", 0, 10, "")).items == []
    with pytest.raises(NotFound):
        await service.cancel("other-org", execution.id)
    assert (await service.get(app.organization, execution.id)).status == ExecutionStatus.PENDING


async def test_an_ephemeral_execution_is_gone_once_read_after_it_ended(tmp_path: Path) -> None:
    service, _, app = _service(tmp_path, storage_mode=StorageMode.EPHEMERAL)
    execution = await service.submit(_submission(app))
    assert (await service.get(app.organization, execution.id)).id == execution.id  # not ended
    await service.cancel(app.organization, execution.id)
    assert (await service.get(app.organization, execution.id)).terminal
    with pytest.raises(NotFound):
        await service.get(app.organization, execution.id)


async def test_anonymous_callers_reach_only_the_active_version_of_public_apps(
    tmp_path: Path,
) -> None:
    target = make_target(tmp_path)

    class Runner:
        async def invoke(self, target, request, execution_id):  # type: ignore[no-untyped-def]
            yield execution_id

    private = Invocations(Apps(target.app), Targets(target), Runner())  # type: ignore[arg-type]
    org, name = target.app.organization, target.app.name
    request = InvocationRequest("POST", "/", "", {}, b"")
    with pytest.raises(Unauthenticated) as refused:
        [f async for f in private.run(ANONYMOUS, org, name, request)]
    assert refused.value.reason == "TOKEN_REQUIRED"
    # An unknown app says the same: an anonymous caller learns nothing.
    with pytest.raises(Unauthenticated):
        [f async for f in private.run(ANONYMOUS, org, "missing", request)]
    public_app = dataclasses.replace(target.app, allow_unauthenticated=True)
    public = Invocations(Apps(public_app), Targets(target), Runner())  # type: ignore[arg-type]
    assert len([f async for f in public.run(ANONYMOUS, org, name, request)]) == 1
    for pinned in ({"version": 1}, {"draft": True}):
        with pytest.raises(Unauthenticated):
            [f async for f in public.run(ANONYMOUS, org, name, request, **pinned)]  # type: ignore[arg-type]
    assert len([f async for f in private.run(LOCAL_ADMIN, org, name, request)]) == 1
    with pytest.raises(InvalidArgument) as both:
        [f async for f in private.run(LOCAL_ADMIN, org, name, request, version=1, draft=True)]
    assert both.value.reason == "CONFLICTING_TARGET"
    nowhere = Invocations(Apps(target.app), Targets(target), None)  # type: ignore[arg-type]
    with pytest.raises(Unavailable) as no_pods:
        [f async for f in nowhere.run(LOCAL_ADMIN, org, name, request)]
    assert no_pods.value.reason == "NO_POD_BACKEND"


def _end(execution_id: str) -> ExecutionEnd:
    return ExecutionEnd(
        execution_id=execution_id,
        status=ExecutionStatus.COMPLETED,
        result=b"ok",
        status_code=200,
        error="",
        error_class="",
        metrics=ExecutionMetrics(execution_ms=3),
        function_version=1,
        completed_at_ms=10,
        retention_ms=None,
    )


async def test_ends_are_written_in_batches_each_under_its_lease(tmp_path: Path) -> None:
    _, store, app = _service(tmp_path)
    for i in range(6):
        await store.submit(f"01JEND{i:020d}", _submission(app), 0)
    claimed = await store.claim("me", 5, 60_000, 1, 3)
    lost = await store.claim("other", 5, 60_000, 1, 3)
    assert len(claimed) == 5 and len(lost) == 1
    writer = CompletionWriter(store, "me", linger_secs=0.05)
    writer.start()
    try:
        for one in [*claimed, *lost]:
            await writer.record(_end(one.execution.id))
        finished = store.finishes
        await asyncio.sleep(0.2)
        # Six ends arrived within the linger: one write.
        assert store.finishes == finished + 1
    finally:
        await writer.close()
    statuses = {one.execution.id: store.rows[one.execution.id].execution.status for one in claimed}
    assert set(statuses.values()) == {ExecutionStatus.COMPLETED}
    # Not ours: left to the worker that holds its lease.
    assert store.rows[lost[0].execution.id].execution.status == ExecutionStatus.RUNNING


async def test_closing_the_writer_writes_what_it_holds(tmp_path: Path) -> None:
    _, store, app = _service(tmp_path)
    await store.submit("01JCLOSE00000000000000000A", _submission(app), 0)
    (claimed,) = await store.claim("me", 1, 60_000, 1, 3)
    writer = CompletionWriter(store, "me", linger_secs=10.0)
    writer.start()
    await writer.record(_end(claimed.execution.id))
    await writer.close()
    assert store.rows[claimed.execution.id].execution.status == ExecutionStatus.COMPLETED
