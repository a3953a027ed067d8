"""The edge every RPC passes through on its way into the server.

Handlers are registered from the service descriptor rather than with the
generated ``add_*Servicer_to_server``, so that this one place can:

- authenticate the caller (no I/O: core/identity.py) and check the method's
  access rule (api/authorization.py) before any handler or database work,
  then that the organization it names exists (cached: core/organizations.py);
- refuse a request larger than MAX_MESSAGE_BYTES with RESOURCE_EXHAUSTED /
  MESSAGE_TOO_LARGE and the limit, before anything else. grpc core's own
  receive limit is set well above it (api/grpc_server.py) so that such a
  request arrives here at all: core's refusal carries no ErrorInfo;
- parse the request bytes itself, turning a malformed message into
  INVALID_ARGUMENT (grpcio would answer INTERNAL for a request it cannot
  deserialize);
- map domain errors to status codes with their ErrorInfo (api/errors.py),
  and any other exception to a bare INTERNAL, never a traceback;
- log one structlog event per RPC with the method, organization, app,
  status code and duration, and count it (observability/metrics.py);
- note how an invocation came (the gateway's ``x-ignite-via``: http,
  app_url, mcp; else grpc) for the invocation metrics.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from google.protobuf import descriptor, message, message_factory

from ignite_server.api.authorization import (
    OrganizationExists,
    authorize,
    require_organization,
)
from ignite_server.api.errors import internal_status, to_status
from ignite_server.domain.errors import (
    IgniteError,
    InvalidArgument,
    ResourceExhausted,
)
from ignite_server.domain.principal import Principal
from ignite_server.observability import metrics, tracing

#: The authenticated caller of the RPC being handled (read by servicers).
CALLER: contextvars.ContextVar[Principal] = contextvars.ContextVar("ignite_caller")

#: Turns the `authorization` metadata value (or None) into a caller.
Authenticate = Callable[[str | None], Awaitable[Principal]]

log = structlog.get_logger("ignite.rpc")

#: The largest request message (documented in docs/limits.md): an Invoke
#: body of up to 32 MiB, sent base64-free over gRPC, plus its envelope.
MAX_MESSAGE_BYTES = 34 * 1024 * 1024
_MIB = 1024 * 1024


def _check_size(raw: bytes) -> None:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ResourceExhausted(
            f"the request is {len(raw)} bytes ({len(raw) / _MIB:.1f} MiB); a message may "
            f"be at most {MAX_MESSAGE_BYTES} bytes ({MAX_MESSAGE_BYTES // _MIB} MiB)",
            reason="MESSAGE_TOO_LARGE",
            metadata={"limit_bytes": str(MAX_MESSAGE_BYTES), "size_bytes": str(len(raw))},
        )


def _request_context(request: message.Message | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    if request is None:
        return fields
    for name, key in (("organization_name", "org"), ("app_name", "app"), ("name", "app")):
        if key not in fields and name in request.DESCRIPTOR.fields_by_name:
            value = getattr(request, name)
            if value:
                fields[key] = value
    return fields


class _Call:
    """Bookkeeping of one RPC: parse, time, log, map errors."""

    def __init__(
        self,
        method: str,
        request_class: type[message.Message],
        authenticate: Authenticate,
        organization_exists: OrganizationExists,
    ) -> None:
        self.method = method
        self.request_class = request_class
        self.authenticate = authenticate
        self.organization_exists = organization_exists
        self.started = time.monotonic()
        self.request: message.Message | None = None
        self.caller = ""

    async def admit(self, raw: bytes, context: grpc.aio.ServicerContext) -> message.Message:
        """Check the size, authenticate, parse, authorize; the caller is then
        in CALLER."""
        _check_size(raw)
        header = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value if isinstance(value, str) else value.decode()
            elif key == metrics.VIA_METADATA:
                via = value if isinstance(value, str) else value.decode(errors="replace")
                metrics.INVOCATION_PATH.set(metrics.path_from_metadata(via))
        principal = await self.authenticate(header)
        self.caller = principal.subject
        request = self.parse(raw)
        authorize(self.method, principal, request)
        await require_organization(self.method, principal, request, self.organization_exists)
        CALLER.set(principal)
        return request

    def parse(self, raw: bytes) -> message.Message:
        try:
            self.request = self.request_class.FromString(raw)
        except message.DecodeError:
            raise InvalidArgument(
                f"the request is not a valid {self.request_class.DESCRIPTOR.full_name}",
                reason="MALFORMED_REQUEST",
            ) from None
        return self.request

    async def fail(self, context: grpc.aio.ServicerContext, err: BaseException) -> None:
        if isinstance(err, IgniteError):
            code, text, trailers = to_status(err)
        else:
            log.error(
                "rpc.crashed", method=self.method, exc_info=err, **_request_context(self.request)
            )
            code, text, trailers = internal_status()
        self.finish(code, reason=getattr(err, "reason", "INTERNAL"))
        tracing.mark_error(f"{code.name} {getattr(err, 'reason', 'INTERNAL')}")
        await context.abort(code, text, trailing_metadata=trailers)

    def finish(self, code: grpc.StatusCode, reason: str = "") -> None:
        duration = time.monotonic() - self.started
        metrics.record_rpc(self.method, code.name, duration)
        extra = {"reason": reason} if reason else {}
        if self.caller:
            extra["caller"] = self.caller
        log.info(
            "rpc",
            method=self.method,
            code=code.name,
            duration_ms=round(duration * 1000, 2),
            **_request_context(self.request),
            **extra,
        )


def _unary(
    method: str,
    request_class: type[message.Message],
    behavior: Callable[..., Awaitable[Any]],
    authenticate: Authenticate,
    organization_exists: OrganizationExists,
) -> Callable[..., Awaitable[Any]]:
    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        call = _Call(method, request_class, authenticate, organization_exists)
        with tracing.rpc_span(method, context.invocation_metadata()):
            try:
                response = await behavior(await call.admit(raw, context), context)
            except grpc.aio.AbortError:
                raise
            except Exception as err:
                await call.fail(context, err)
                raise  # unreachable: abort raises
            call.finish(grpc.StatusCode.OK)
            return response

    return handle


def _streaming(
    method: str,
    request_class: type[message.Message],
    behavior: Callable[..., AsyncGenerator[Any, None]],
    authenticate: Authenticate,
    organization_exists: OrganizationExists,
) -> Callable[..., AsyncGenerator[Any, None]]:
    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> AsyncGenerator[Any, None]:
        call = _Call(method, request_class, authenticate, organization_exists)
        with tracing.rpc_span(method, context.invocation_metadata()):
            try:
                # Closed with this generator: a client that hangs up between
                # items ends the behavior's work (core/revision_throttler.py).
                request = await call.admit(raw, context)
                async with contextlib.aclosing(behavior(request, context)) as items:
                    async for item in items:
                        yield item
            except grpc.aio.AbortError:
                raise
            except Exception as err:
                await call.fail(context, err)
                return
            call.finish(grpc.StatusCode.OK)

    return handle


def generic_handler(
    service: descriptor.ServiceDescriptor,
    servicer: object,
    authenticate: Authenticate,
    organization_exists: OrganizationExists,
) -> grpc.GenericRpcHandler:
    """A handler serving every method of ``service`` from ``servicer``'s
    coroutine methods of the same names."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        behavior = getattr(servicer, method.name)
        full = f"/{service.full_name}/{method.name}"
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _streaming(full, request_class, behavior, authenticate, organization_exists),
                request_deserializer=None,
                response_serializer=response_class.SerializeToString,
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _unary(full, request_class, behavior, authenticate, organization_exists),
                request_deserializer=None,
                response_serializer=response_class.SerializeToString,
            )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)
