"""Invocations: every decision about one, in one place.

- **Who may**: an authenticated caller with the invoke permission (checked
  at the RPC boundary), or an anonymous caller for the active version of an
  app that allows unauthenticated calls; for any other app an anonymous
  caller learns nothing, not even that it exists.
- **What runs**: the active version, a given published version, or the
  compiled draft (never both), as run_targets.py resolves it; an app found
  by its URL's host name only when that host label is its own alone
  (labels held by two apps from before they were unique serve neither).
- **Its id**: a ULID minted here for synchronous and asynchronous
  invocations alike (``new_execution_id``).
- **Its trace**: a synchronous invocation stores no record, so the RPC's
  log line (with the execution id bound here) is its trace; an
  asynchronous one is its stored Execution.
- **Sync or async**: ``run`` streams the answer now; ``submit`` stores a
  PENDING execution the workers (worker.py) run through ``stream``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from ulid import ULID

from ignite_server.core.apps import stored_app
from ignite_server.core.executions import ExecutionService
from ignite_server.core.run_targets import RunTargets
from ignite_server.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    Unauthenticated,
    Unavailable,
)
from ignite_server.domain.models import (
    Execution,
    InvocationRequest,
    ResponseFrame,
    RunTarget,
)
from ignite_server.domain.principal import Principal
from ignite_server.observability import tracing
from ignite_server.ports.app_runner import AppRunner
from ignite_server.ports.app_store import AppStore


def new_execution_id() -> str:
    """A fresh execution id: a ULID, so ids sort by creation time."""
    return str(ULID())


class Invocations:
    """Runs invocations now, or stores them for the workers."""

    def __init__(
        self,
        store: AppStore,
        targets: RunTargets,
        runner: AppRunner | None,
        executions: ExecutionService,
    ) -> None:
        self._store = store
        self._targets = targets
        self._runner = runner
        self._executions = executions

    async def run(
        self,
        caller: Principal,
        organization: str,
        app: str,
        request: InvocationRequest,
        *,
        version: int = 0,
        draft: bool = False,
        by_host: bool = False,
    ) -> AsyncIterator[ResponseFrame]:
        """A synchronous invocation: head, chunks, trailer. ``by_host``: the
        app was found by its URL's host name, which must be its own."""
        if draft and version:
            raise InvalidArgument(
                "set either version or draft, not both",
                reason="CONFLICTING_TARGET",
                metadata={"field": "version"},
            )
        if caller.anonymous:
            await self._admit_anonymous(organization, app, version, draft)
        target = await self._targets.resolve(organization, app, version, draft)
        if by_host and target.app.host_disputed:
            raise FailedPrecondition(
                f"http://{target.app.host_label}.… names more than one app (created before"
                " host names were unique): it serves none of them until a platform"
                " administrator deletes or re-creates all but one",
                reason="HOST_DISPUTED",
                metadata={"host": target.app.host_label},
            )
        execution_id = new_execution_id()
        tracing.set_attribute(tracing.EXECUTION_ID, execution_id)
        # Sync invocations store no record: the RPC's own log line (one per
        # call, api/rpc_boundary.py) carries the execution id and version.
        structlog.contextvars.bind_contextvars(
            execution_id=execution_id, app_version=target.version.version
        )
        async for frame in self.stream(target, request, execution_id):
            yield frame

    async def submit(
        self,
        organization: str,
        app: str,
        request: InvocationRequest,
        version: int,
        idempotency_key: str,
    ) -> Execution:
        """An asynchronous invocation: stored PENDING, run by a worker."""
        return await self._executions.submit(
            new_execution_id(), organization, app, request, version, idempotency_key
        )

    async def resolve(self, organization: str, app: str, version: int) -> RunTarget:
        """What a stored execution runs (the worker's first step)."""
        return await self._targets.resolve(organization, app, version)

    def stream(
        self, target: RunTarget, request: InvocationRequest, execution_id: str
    ) -> AsyncIterator[ResponseFrame]:
        """Run ``request`` on ``target``'s pods."""
        if self._runner is None:
            raise Unavailable("this server runs no pods", reason="NO_POD_BACKEND")
        return self._runner.invoke(target, request, execution_id)

    async def _admit_anonymous(
        self, organization: str, app: str, version: int, draft: bool
    ) -> None:
        """Anonymous callers may invoke the active version of public apps only."""
        stored = await stored_app(self._store, organization, app)
        if stored is None or not stored.allow_unauthenticated or draft or version:
            raise Unauthenticated(
                "this call needs 'Authorization: Bearer <token>'", reason="TOKEN_REQUIRED"
            )
