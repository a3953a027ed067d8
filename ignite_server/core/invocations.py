"""Invocations: every decision about one, in one place.

- **Who may**: an authenticated caller with the invoke permission (checked
  at the RPC boundary), or an anonymous caller for the active version of an
  app that allows unauthenticated calls; for any other app an anonymous
  caller learns nothing, not even that it exists.
- **What runs**: the version the app's traffic split picks (the active one
  without a split; a sticky key keeps a caller on one version), a given
  published version, a tagged one, or the compiled draft (one of them), as
  run_targets.py resolves it; the head frame says which version served. An
  app found by its URL's host name is served only when that host label is
  its own alone (labels held by two apps from before they were unique serve
  neither).
- **Its outcome**: every invocation's success and duration are told to the
  gradual rollouts (``on_served``), which judge a canary by them.
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

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Callable
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
from ignite_server.domain.models import (
    InvocationRequest,
    ResponseFrame,
    ResponseHead,
    ResponseTrailer,
    RunTarget,
)
from ignite_server.domain.principal import Principal
from ignite_server.observability import tracing
from ignite_server.ports.app_runner import AppRunner
from ignite_server.ports.app_store import AppStore

#: The request header a caller keeps itself on one version of a split with.
STICKY_KEY_HEADER = "x-ignite-sticky-key"

#: (app id, version, failed, seconds) of every finished invocation.
Served = Callable[[str, int, bool, float], None]


def sticky_key_of(request: InvocationRequest, given: str = "") -> str:
    """The caller's sticky key: given explicitly, or in its header."""
    if given:
        return given
    for name, value in request.headers.items():
        if name.lower() == STICKY_KEY_HEADER:
            return value
    return ""


class Invocations:
    """Admits invocations and runs them on the app runner's pods."""

    def __init__(
        self,
        store: AppStore,
        targets: RunTargets,
        runner: AppRunner | None,
        events: PlatformEvent | None = None,
        on_served: Served | None = None,
    ) -> None:
        self._store = store
        self._targets = targets
        self._runner = runner
        self._events = events
        self._on_served = on_served

    async def run(
        self,
        caller: Principal,
        organization: str,
        app: str,
        request: InvocationRequest,
        *,
        version: int = 0,
        draft: bool = False,
        tag: str = "",
        sticky_key: str = "",
        by_host: bool = False,
    ) -> AsyncGenerator[ResponseFrame, None]:
        """A synchronous invocation: head, chunks, trailer. ``by_host``: the
        app was found by its URL's host name, which must be its own."""
        if sum((bool(draft), bool(version), bool(tag))) > 1:
            raise InvalidArgument(
                "set one of version, tag and draft",
                reason="CONFLICTING_TARGET",
                metadata={"field": "version"},
            )
        if caller.anonymous:
            await self._admit_anonymous(organization, app, version, draft)
        target = await self._targets.resolve(
            organization,
            app,
            version,
            draft,
            tag=tag,
            sticky_key=sticky_key_of(request, sticky_key),
        )
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
        frames = self._served(target, self._runner.invoke(target, request, execution_id))
        if self._events is None:
            return frames
        return logged(frames, target, request, execution_id, self._events, time.monotonic)

    async def _served(
        self, target: RunTarget, frames: AsyncGenerator[ResponseFrame, None]
    ) -> AsyncGenerator[ResponseFrame, None]:
        """``frames`` with the serving version in the head; the outcome told
        to ``on_served`` (failed: no complete answer, or a 5xx; a caller that
        went away tells nothing about the version). Closing it closes
        ``frames``, so the pod's slot is given back or abandoned at once."""
        version = target.version.version
        started = time.monotonic()
        status = 0
        complete = False
        abandoned = False
        try:
            async with aclosing(frames):
                async for frame in frames:
                    if isinstance(frame, ResponseHead):
                        status = frame.status_code
                        frame = dataclasses.replace(frame, version=version)
                    elif isinstance(frame, ResponseTrailer):
                        complete = True
                    yield frame
        except (GeneratorExit, asyncio.CancelledError):
            abandoned = True
            raise
        finally:
            if self._on_served is not None and version and not abandoned:
                failed = not complete or status >= 500
                self._on_served(target.app.id, version, failed, time.monotonic() - started)

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
