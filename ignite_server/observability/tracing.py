"""The server's spans (ignite_common/tracing.py does the set-up):

- one SERVER span per RPC (api/rpc_boundary.py), continuing the caller's
  ``traceparent`` from the call metadata; an invocation's span carries
  ``ignite.execution_id``;
- ``ignite.activation`` while a request waits for a pod of a cold app
  (core/invocation_meter.py), with ``ignite.pod.start`` under it for the pod being
  started (core/revision_throttler.py);
- ``ignite.pod.request``, a CLIENT span per request sent to a pod, whose
  context goes to the pod as the ``traceparent`` header;
- ``ignite.build`` per draft build (core/draft_builds.py);
- ``ignite.execution`` per attempt of an asynchronous execution
  (core/worker.py).

All of them are no-ops unless ``--otlp-endpoint`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import Any

from ignite_common import tracing as _tracing

TRACER = _tracing.tracer("ignite_server")

EXECUTION_ID = "ignite.execution_id"
APP = "ignite.app"

set_attribute = _tracing.set_attribute
set_error = _tracing.set_error
inject = _tracing.inject


def enabled() -> bool:
    """Whether spans are recorded at all."""
    return _tracing.ENABLED


def span(name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """An INTERNAL span under the current one."""
    return _tracing.span(TRACER, name, attributes)


def rpc_span(method: str, metadata: Any) -> AbstractContextManager[Any]:
    """The SERVER span of one RPC, continuing the caller's trace."""
    service, _, name = method.strip("/").partition("/")
    return _tracing.server_span(
        TRACER,
        f"{service}/{name}",
        metadata or (),
        {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )


def mark_error(description: str) -> None:
    """Mark the current span failed."""
    if _tracing.ENABLED:
        from opentelemetry import trace

        _tracing.set_error(trace.get_current_span(), description)


class Handle:
    """A started span, current until ``end`` when ``attached``."""

    __slots__ = ("span", "token")

    def __init__(self, span: Any, token: Any) -> None:
        self.span = span
        self.token = token


def begin(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    client: bool = False,
    attach: bool = False,
) -> Handle | None:
    """Start a span under the current one, for code whose span cannot be a
    ``with`` block (it ends inside another block); ``attach`` makes it the
    current span (tasks started meanwhile inherit it) until ``end``.
    None when tracing is off."""
    if not _tracing.ENABLED:
        return None
    from opentelemetry import context, trace
    from opentelemetry.trace import SpanKind

    started = TRACER.start_span(
        name,
        kind=SpanKind.CLIENT if client else SpanKind.INTERNAL,
        attributes=dict(attributes or {}),
    )
    token = context.attach(trace.set_span_in_context(started)) if attach else None
    return Handle(started, token)


def end(handle: Handle | None, error: str = "", **attributes: Any) -> None:
    """End a span from ``begin`` (detaching it if attached)."""
    if handle is None:
        return
    if handle.token is not None:
        from opentelemetry import context

        context.detach(handle.token)
        handle.token = None
    for key, value in attributes.items():
        handle.span.set_attribute(key, value)
    if error:
        _tracing.set_error(handle.span, error)
    handle.span.end()


def inject_from(handle: Handle | None, headers: MutableMapping[str, str]) -> None:
    """Put ``handle``'s span context into ``headers`` as ``traceparent``."""
    if handle is None:
        return
    from opentelemetry import propagate, trace

    propagate.inject(headers, context=trace.set_span_in_context(handle.span))
