"""OpenTelemetry tracing of a process: off unless an OTLP endpoint is given.

``configure`` installs a tracer provider that batches spans to an OTLP/gRPC
collector (``--otlp-endpoint host:port``, plaintext on loopback, TLS with
an ``https://`` endpoint) under the process's ``service.name``. Until then
``ENABLED`` is False and every helper here returns at once, so an untraced
platform pays one attribute read per would-be span.

Context travels the W3C way (``traceparent`` / ``tracestate``): in HTTP
headers at the gateway and towards pods, in gRPC metadata between the
gateway and the server (the same keys).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

#: True once ``configure`` installed an exporting provider.
ENABLED = False
#: How often, milliseconds, finished spans are sent: soon enough that a
#: trace shows up while someone looks for it, rarely enough to batch.
EXPORT_DELAY_MS = 1000

_provider: Any = None


def configure(service_name: str, endpoint: str) -> None:
    """Export spans to the OTLP/gRPC collector at ``endpoint`` (no-op when empty)."""
    global ENABLED, _provider
    if not endpoint:
        return
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    secure = endpoint.startswith("https://")
    target = endpoint.removeprefix("https://").removeprefix("http://")
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=target, insecure=not secure),
            schedule_delay_millis=EXPORT_DELAY_MS,
        )
    )
    trace.set_tracer_provider(provider)
    _provider = provider
    ENABLED = True


def shutdown() -> None:
    """Send what is buffered and stop exporting."""
    global ENABLED
    if _provider is not None:
        _provider.shutdown()
    ENABLED = False


def tracer(name: str) -> trace.Tracer:
    """The tracer of instrumentation scope ``name``."""
    return trace.get_tracer(name)


def extract(carrier: Mapping[str, str]) -> otel_context.Context:
    """The trace context a caller sent in ``carrier`` (headers, metadata)."""
    return propagate.extract(carrier)


def inject(carrier: MutableMapping[str, str]) -> None:
    """Put the current span's ``traceparent`` (and ``tracestate``) into ``carrier``."""
    if ENABLED:
        propagate.inject(carrier)


def metadata_pairs() -> list[tuple[str, str]]:
    """The current trace context as gRPC metadata pairs ([] when off)."""
    if not ENABLED:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


@contextlib.contextmanager
def server_span(
    tracer_: trace.Tracer,
    name: str,
    carrier: Iterable[tuple[str, Any]] | Mapping[str, str],
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """A SERVER span continuing the caller's trace from ``carrier``; None when off."""
    if not ENABLED:
        yield None
        return
    pairs = carrier.items() if isinstance(carrier, Mapping) else carrier
    incoming = {
        key.lower(): value if isinstance(value, str) else value.decode(errors="replace")
        for key, value in pairs
        if key.lower() in ("traceparent", "tracestate")
    }
    with tracer_.start_as_current_span(
        name,
        context=extract(incoming),
        kind=SpanKind.SERVER,
        attributes=dict(attributes or {}),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


@contextlib.contextmanager
def span(
    tracer_: trace.Tracer,
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[Span | None]:
    """A child span of the current one, made current; None when off."""
    if not ENABLED:
        yield None
        return
    with tracer_.start_as_current_span(name, kind=kind, attributes=dict(attributes or {})) as s:
        yield s


def set_attribute(key: str, value: Any) -> None:
    """Annotate the current span (no-op when off or outside a span)."""
    if ENABLED:
        trace.get_current_span().set_attribute(key, value)


def set_error(target: Span | None, description: str) -> None:
    """Mark ``target`` failed with ``description``."""
    if target is not None:
        target.set_status(Status(StatusCode.ERROR, description))
