"""Running invocations on pods: ports/app_runner.py's ``AppRunner``.

Construction (server start-up, server.py)::

    invoker = Invoker(backend, owns_backend=True)   # any PodBackend
    ...
    async for frame in invoker.invoke(target, request, execution_id): ...
    await invoker.close()                            # closes the backend too

An invocation finds the ``Revision`` (core/revision.py) of its app
version, acquires a slot on a ready pod (held while a pod starts, bounded by
the activation deadline), and sends the request to the pod as a real HTTP
request with the execution id in ``X-Ignite-Execution-Id``. The response is
streamed back as ``ResponseHead``, ``ResponseChunk``\\ s of at most
``CHUNK_BYTES`` (never the whole body in memory) and a ``ResponseTrailer``.
The app's ``timeout_secs`` bounds the time spent waiting on the pod (not
on the consumer of the stream); past it the request ends with
DeadlineExceeded and the pod, which still runs the handler, is stopped as
soon as it runs nothing else. A pod that dies under a request ends it with
Unavailable (or ResourceExhausted ``OUT_OF_MEMORY`` when the kernel killed
it for its memory limit), and is replaced. A cancelled invocation (its caller
went away, or its execution was cancelled) is cut off like a timed-out one.

A revision is keyed by app, version, and everything a pod is started with
(env, resources, concurrency, artifact): a change of settings starts fresh
pods and drains the old ones. One supervisor task ticks every revision's
autoscaler every ``TICK_SECS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Collection
from typing import TypeVar

import aiohttp
import structlog

from ignite_server.core.capacity import PodCapacity
from ignite_server.core.revision import PodSlot, Revision
from ignite_server.domain.errors import (
    DeadlineExceeded,
    IgniteError,
    ResourceExhausted,
    Unavailable,
)
from ignite_server.domain.models import (
    DeploymentState,
    InvocationRequest,
    ResponseChunk,
    ResponseFrame,
    ResponseHead,
    ResponseTrailer,
    RunTarget,
)
from ignite_server.observability import metrics, tracing
from ignite_server.ports.app_runner import DeploymentStatus
from ignite_server.ports.pod_backend import ExitReason, PodBackend, PodSpec

log = structlog.get_logger(__name__)
T = TypeVar("T")

#: Per-pod concurrency when an app sets max_concurrency 0. Python handlers
#: run in threads under one GIL: a handful overlap I/O waits well, many more
#: only queue inside the pod where the platform cannot see or spread them.
DEFAULT_MAX_CONCURRENCY = 8
#: Requests that may wait per app version for a free pod slot. Each holds
#: its body (up to 32 MiB) in memory, so the bound protects the server.
DEFAULT_QUEUE_DEPTH = 256
#: How long a request may wait for a pod (cold start or free slot) before
#: Unavailable; a cold Python pod takes ~20-150 ms, a heavy import seconds.
DEFAULT_ACTIVATION_TIMEOUT_SECS = 30.0
#: Autoscaler period: fine enough that scale-down periods of a few seconds
#: are honoured closely, coarse enough to cost nothing.
TICK_SECS = 0.5
#: Largest response chunk: well below gRPC's 4 MiB message limit.
CHUNK_BYTES = 64 * 1024
#: After a connection error, how long to wait for the pod's exit to learn
#: why it died (the OOM killer's verdict arrives with the exit).
EXIT_VERDICT_SECS = 2.0
#: Headers that describe one HTTP hop, not the request (RFC 9110 §7.6.1),
#: plus the ones aiohttp computes itself.
HOP_HEADERS = frozenset(
    {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
        "trailer", "upgrade", "host", "content-length",
    }
)  # fmt: skip
EXECUTION_ID_HEADER = "X-Ignite-Execution-Id"


class Invoker:
    """Runs app invocations on pods of a ``PodBackend``; see the module docstring."""

    def __init__(
        self,
        backend: PodBackend,
        *,
        queue_depth: int = DEFAULT_QUEUE_DEPTH,
        activation_timeout_secs: float = DEFAULT_ACTIVATION_TIMEOUT_SECS,
        owns_backend: bool = False,
        capacity: PodCapacity | None = None,
    ) -> None:
        self.backend = backend
        #: Pod starts are admitted against it (core/capacity.py).
        self.capacity = capacity
        self.queue_depth = queue_depth
        self.activation_timeout_secs = activation_timeout_secs
        self._owns_backend = owns_backend
        self._revisions: dict[tuple[str, int, str], Revision] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        #: Revisions no longer routed to, whose pods are finishing.
        self._draining: set[Revision] = set()
        self._closed = False

    # --- AppRunner -------------------------------------------------------------

    async def invoke(
        self, target: RunTarget, request: InvocationRequest, execution_id: str
    ) -> AsyncIterator[ResponseFrame]:
        """Run one invocation (see ports/app_runner.py ``AppRunner.invoke``):
        acquire a slot, send the request, stream the answer, then the trailer."""
        revision = self._revision(target)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        cold = revision.ready_replicas == 0
        timeout = target.resources.timeout_secs
        cold_start_s: float | None = None
        pod_s = 0.0  # time spent waiting on the pod, for the overhead metric
        status = 0
        failure = "cancelled"  # until the answer is complete or its failure known
        # Pods started while it waits are traced under the activation.
        activation = (
            tracing.begin("ignite.activation", {tracing.APP: target.app.id}, attach=True)
            if cold
            else None
        )
        pod_request: tracing.Handle | None = None
        try:
            async with revision.slot(loop.time() + self.activation_timeout_secs) as slot:
                tracing.end(activation)
                activation = None
                if cold:
                    cold_start_s = time.monotonic() - started
                cold_start_ms = int(cold_start_s * 1000) if cold_start_s is not None else 0
                cpu_before = slot.pod.stats().cpu_used_ms
                deadline = loop.time() + timeout
                with slot.pod.executing(execution_id):
                    headers = _request_headers(request, execution_id)
                    pod_request = tracing.begin(
                        "ignite.pod.request",
                        {tracing.APP: target.app.id, tracing.EXECUTION_ID: execution_id},
                        client=True,
                    )
                    tracing.inject_from(pod_request, headers)
                    sent = time.monotonic()
                    response = await _bounded(
                        slot,
                        deadline,
                        slot.session.request(
                            request.method or "POST",
                            _url(slot, request),
                            data=request.body,
                            headers=headers,
                            allow_redirects=False,
                        ),
                    )
                    pod_s += time.monotonic() - sent
                    status = response.status
                    try:
                        yield ResponseHead(
                            status_code=response.status,
                            headers=_response_headers(response),
                            execution_id=execution_id,
                        )
                        total = 0
                        while True:
                            step = time.monotonic()
                            data = await _bounded(
                                slot, deadline, response.content.read(CHUNK_BYTES)
                            )
                            pod_s += time.monotonic() - step
                            if not data:
                                break
                            total += len(data)
                            yield ResponseChunk(data)
                        revision.served()
                        usage = slot.pod.stats()
                        failure = ""
                        yield ResponseTrailer(
                            total_body_bytes=total,
                            duration_ms=int((time.monotonic() - started) * 1000),
                            cold_start_ms=cold_start_ms,
                            cpu_used_ms=max(0, usage.cpu_used_ms - cpu_before),
                            memory_used_mb=usage.memory_peak_mb,
                        )
                    finally:
                        response.release()
        except TimeoutError:
            # The slot was abandoned on the way out: the handler may still run.
            failure = "timeout"
            raise _timeout(timeout) from None
        except IgniteError as err:
            failure = _failure_outcome(err)
            raise
        finally:
            tracing.end(activation, error=failure)
            tracing.end(
                pod_request,
                error=failure,
                **({"http.response.status_code": status} if status else {}),
            )
            metrics.record_invocation(
                target.app.id,
                target.version.version,
                failure or metrics.outcome_of_status(status),
                time.monotonic() - started,
                cold_start_s=cold_start_s,
                pod_s=pod_s,
            )

    def status(self, app_id: str) -> DeploymentStatus:
        """What runs for ``app_id`` now, with the backend's warnings."""
        revisions = [r for (a, _, _), r in self._revisions.items() if a == app_id]
        warnings = " ".join(self.backend.info.warnings)
        versions = frozenset(v for (a, v, _) in self._revisions if a == app_id)
        observed = self.backend.observed(app_id, versions)
        if observed is not None:
            said = observed.message
            exits = [r.last_exit for r in revisions if r.last_exit is not None]
            if not said and exits:
                said = f"a pod {exits[-1].message}"
            return DeploymentStatus(
                state=observed.state,
                ready_replicas=observed.ready_replicas,
                message=" ".join(m for m in (said, warnings) if m),
            )
        if not revisions:
            return DeploymentStatus(state=None, message=warnings)
        states = {r.state() for r in revisions}
        ready = sum(r.ready_replicas for r in revisions)
        message = ""
        for state in (
            DeploymentState.DEPLOYED,
            DeploymentState.ACTIVATING,
            DeploymentState.FAILED,
            DeploymentState.COLD,
        ):
            if state in states:
                break
        if state == DeploymentState.FAILED:
            message = next(r.last_error for r in revisions if r.last_error)
        else:
            exits = [r.last_exit for r in revisions if r.last_exit is not None]
            if exits:
                message = f"a pod {exits[-1].message}"
        return DeploymentStatus(
            state=state,
            ready_replicas=ready,
            message=" ".join(m for m in (message, warnings) if m),
        )

    async def retire(self, app_id: str, keep_version: int | Collection[int] | None) -> None:
        """Move the app's traffic off every version but ``keep_version``
        (one version, or the versions of a traffic split).

        Returns at once: new requests no longer reach those versions, and
        their pods drain in the background (requests running or queued on
        them finish first; ``close`` stops whatever is left), so a publish
        never waits for an old version's slow requests."""
        keep = {keep_version} if isinstance(keep_version, int) else set(keep_version or ())
        doomed = [key for key in self._revisions if key[0] == app_id and key[1] not in keep]
        drains = [self._spawn_retire(self._revisions.pop(key)) for key in doomed]
        if keep_version is None:
            self._track(asyncio.create_task(self._remove(app_id, drains)))

    async def _rescale(self, spec: PodSpec) -> None:
        try:
            await self.backend.scaling_changed(spec)
        except Exception:
            log.exception("applying new scaling bounds failed", app=spec.app_id)

    async def _remove(self, app_id: str, drains: list[asyncio.Task[None]]) -> None:
        """Once the deleted app's pods are gone, what the backend keeps for it goes too."""
        await asyncio.gather(*drains, return_exceptions=True)
        try:
            await self.backend.remove_app(app_id)
        except Exception:
            log.exception("removing the app from the backend failed", app=app_id)

    async def close(self) -> None:
        """Stop the supervisor and every pod (and the backend, if owned)."""
        self._closed = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        draining = list(self._draining)
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        revisions, self._revisions = list(self._revisions.values()), {}
        await asyncio.gather(*(r.close() for r in [*revisions, *draining]))
        if self._owns_backend:
            await self.backend.close()

    # --- beyond AppRunner -----------------------------------------------------

    async def prepare(self, target: RunTarget, timeout_secs: float) -> None:
        """The readiness gate's half here: one pod of ``target`` started and
        answering its health check, within ``timeout_secs``. It is taken and
        given back as a request's slot would be, so a cold version starts
        one pod (shared with requests arriving meanwhile) and the autoscaler
        keeps it for the scale-down period, as after a request."""
        revision = self._revision(target)
        async with revision.slot(asyncio.get_running_loop().time() + timeout_secs):
            pass

    async def warm(self, target: RunTarget) -> None:
        """Prepare ``target`` before its first request: start its
        ``reserved_capacity`` pods (call after publish or rollback)."""
        revision = self._revision(target)
        revision.tick(time.monotonic())

    def loads(self) -> list[metrics.RevisionLoad]:
        """What every revision runs and holds now (read when metrics are
        scraped: a snapshot, never awaited)."""
        return [
            metrics.RevisionLoad(
                app=r.spec.app_id,
                ready_pods=r.ready_replicas,
                starting_pods=r.starting,
                queued=r.waiting,
                in_flight=r.in_flight,
            )
            for r in [*self._revisions.values(), *self._draining]
        ]

    def revision(self, target: RunTarget) -> Revision | None:
        """The live revision serving ``target``, if any (tests, diagnostics)."""
        return self._revisions.get(target.key)

    # --- internals ------------------------------------------------------------

    def _revision(self, target: RunTarget) -> Revision:
        if self._closed:
            raise Unavailable("the server is shutting down", reason="SHUTTING_DOWN")
        key = target.key
        revision = self._revisions.get(key)
        if revision is None:
            revision = Revision(
                _spec(target),
                target.app.scaling,
                self.backend,
                queue_depth=self.queue_depth,
                capacity=self.capacity,
            )
            # The same version with other settings: its old pods drain.
            stale = [k for k in self._revisions if k[:2] == key[:2]]
            for old in stale:
                self._spawn_retire(self._revisions.pop(old))
            self._revisions[key] = revision
            self._ensure_supervisor()
        else:
            revision.autoscaler.scaling = target.app.scaling
            if revision.spec.scaling != target.app.scaling:
                revision.spec = dataclasses.replace(revision.spec, scaling=target.app.scaling)
                self._track(asyncio.create_task(self._rescale(revision.spec)))
        return revision

    def _spawn_retire(self, revision: Revision) -> asyncio.Task[None]:
        self._draining.add(revision)
        task = self._track(asyncio.create_task(revision.drain()))
        task.add_done_callback(lambda _: self._draining.discard(revision))
        return task

    def _track(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        return task

    def _ensure_supervisor(self) -> None:
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECS)
            now = time.monotonic()
            for revision in list(self._revisions.values()):
                try:
                    revision.tick(now)
                except Exception:
                    log.exception("autoscaler tick failed", app=revision.spec.app_id)


def _spec(target: RunTarget) -> PodSpec:
    return PodSpec(
        app_id=target.app.id,
        version=target.version.version,
        artifact_dir=target.artifact_dir,
        env=dict(target.app.env),
        resources=target.resources,
        max_concurrency=target.app.max_concurrency or DEFAULT_MAX_CONCURRENCY,
        scaling=target.app.scaling,
    )


def _url(slot: PodSlot, request: InvocationRequest) -> str:
    path = request.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return slot.pod.base_url + path + (f"?{request.query}" if request.query else "")


def _request_headers(request: InvocationRequest, execution_id: str) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
    headers = {k: v for k, v in headers.items() if k.lower() != EXECUTION_ID_HEADER.lower()}
    headers[EXECUTION_ID_HEADER] = execution_id
    return headers


def _response_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        if name.lower() in HOP_HEADERS:
            continue
        # Repeated headers fold into one, as RFC 9110 §5.3 allows.
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def _bounded(slot: PodSlot, deadline: float, step: Awaitable[T]) -> T:
    """One step of talking to the pod, by ``deadline`` (TimeoutError past
    it); a broken connection becomes the error that says why."""
    try:
        async with asyncio.timeout_at(deadline):
            return await step
    except aiohttp.ClientError as exc:
        raise await _pod_failure(slot, exc) from None


def _failure_outcome(err: IgniteError) -> str:
    """The metrics outcome of an invocation that got no complete answer."""
    if isinstance(err, DeadlineExceeded):
        return "timeout"
    if err.reason == "QUEUE_FULL":
        return "queue_full"
    if err.reason in ("CAPACITY", "QUOTA_EXCEEDED"):
        return "no_capacity"
    if err.reason in ("OUT_OF_MEMORY", "POD_EXITED", "POD_CONNECTION_LOST"):
        return "pod_failure"
    return "unavailable"


def _timeout(timeout_secs: int) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"the handler did not finish within its timeout of {timeout_secs}s",
        reason="EXECUTION_TIMEOUT",
    )


async def _pod_failure(slot: PodSlot, exc: Exception) -> IgniteError:
    """The error for a request whose pod connection broke: why the pod died
    if it did (waiting briefly for its exit), else a lost connection."""
    end = slot.pod.exit
    if end is None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(EXIT_VERDICT_SECS):
                end = await slot.pod.wait()
    if end is None:
        return Unavailable(
            f"the connection to the app's pod broke: {type(exc).__name__}",
            reason="POD_CONNECTION_LOST",
        )
    if end.reason == ExitReason.OUT_OF_MEMORY:
        return ResourceExhausted(f"the app's pod was {end.message}", reason="OUT_OF_MEMORY")
    return Unavailable(f"the app's pod {end.message} during the request", reason="POD_EXITED")
