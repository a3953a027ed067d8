"""Invocations: every decision about one, in one place.

- **Who may**: an authenticated caller with the invoke permission (checked
  at the RPC boundary), or an anonymous caller for the active version of an
  app that allows unauthenticated calls; for any other app an anonymous
  caller learns nothing, not even that it exists.
- **What runs**: the active version, a given published version, or the
  compiled draft (never both), as run_targets.py resolves it; an app found
  by its URL's host name only when that host label is its own alone
  (labels held by two apps from before they were unique serve neither).
- **Its id**: a ULID (core/execution_ids.py), minted here for a
  synchronous invocation and by ExecutionService for an asynchronous one.
- **Its trace**: a synchronous invocation stores no record, so the RPC's
  log line (with the execution id bound here) is its trace; an
  asynchronous one is its stored Execution.
- **Sync or async**: ``run`` streams the answer now; an asynchronous one
  is stored PENDING by ExecutionService (executions.py) and run by the
  workers (worker.py) through ``stream``.
- **Its lines in the app's log**: both pass through ``stream``, which writes
  the request line and the platform events of every invocation
  (request_log.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing

import structlog

from ignite_server.core.apps import stored_app
from ignite_server.core.execution_ids import new_execution_id
from ignite_server.core.request_log import PlatformEvent, logged
from ignite_server.core.run_targets import RunTargets
from ignite_server.core.validation import is_name
from ignite_server.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    Unauthenticated,
    Unavailable,
)
from ignite_server.domain.models import InvocationRequest, ResponseFrame, RunTarget
from ignite_server.domain.principal import Principal
from ignite_server.observability import tracing
from ignite_server.ports.app_runner import AppRunner
from ignite_server.ports.app_store import AppStore


class Invocations:
    """Admits invocations and runs them on the app runner's pods."""

    def __init__(
        self,
        store: AppStore,
        targets: RunTargets,
        runner: AppRunner | None,
        events: PlatformEvent | None = None,
    ) -> None:
        self._store = store
        self._targets = targets
        self._runner = runner
        self._events = events

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
    ) -> AsyncGenerator[ResponseFrame, None]:
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
        async with aclosing(self.stream(target, request, execution_id)) as frames:
            async for frame in frames:
                yield frame

    def stream(
        self, target: RunTarget, request: InvocationRequest, execution_id: str
    ) -> AsyncGenerator[ResponseFrame, None]:
        """Run ``request`` on ``target``'s pods."""
        if self._runner is None:
            raise Unavailable("this server runs no pods", reason="NO_POD_BACKEND")
        frames = self._runner.invoke(target, request, execution_id)
        if self._events is None:
            return frames
        return logged(frames, target, request, execution_id, self._events, time.monotonic)

    async def anonymous_allowed(self, organization: str, app: str) -> bool:
        """Whether an anonymous caller may invoke the app's active version
        (False for a missing app, a private one, and names that are not
        names)."""
        if not (is_name(organization) and is_name(app)):
            return False
        stored = await stored_app(self._store, organization, app)
        return stored is not None and stored.allow_unauthenticated

    async def _admit_anonymous(
        self, organization: str, app: str, version: int, draft: bool
    ) -> None:
        """Anonymous callers may invoke the active version of public apps only."""
        if draft or version or not await self.anonymous_allowed(organization, app):
            raise Unauthenticated(
                "this call needs 'Authorization: Bearer <token>'", reason="TOKEN_REQUIRED"
            )
