"""Domain errors → gRPC status, in exactly one place.

A status carries a ``google.rpc.Status`` with a ``google.rpc.ErrorInfo``
(reason, domain, metadata) in the ``grpc-status-details-bin`` trailer, the
way Google APIs (AIP-193) send it, so gRPC clients, the gateway and the CLI
can all read the stable reason. Anything that is not a domain error is a bug:
it is logged with its traceback here and reaches the client only as INTERNAL
with a generic message.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from ignite_server.domain import errors

#: The ErrorInfo domain of every Ignite error.
DOMAIN = "ignite.dodil.io"
DETAILS_KEY = "grpc-status-details-bin"

_CODES: dict[type[errors.IgniteError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.Cancelled: grpc.StatusCode.CANCELLED,
    errors.Internal: grpc.StatusCode.INTERNAL,
    errors.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
}


def status_code_of(err: errors.IgniteError) -> grpc.StatusCode:
    for cls in type(err).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return grpc.StatusCode.INTERNAL


def status_details(
    code: grpc.StatusCode, message: str, reason: str, metadata: dict[str, str]
) -> bytes:
    """The serialized google.rpc.Status carrying one ErrorInfo."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return status.SerializeToString()


def to_status(
    err: errors.IgniteError,
) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """(code, message, trailing metadata) for a domain error."""
    code = status_code_of(err)
    details = status_details(code, err.message, err.reason, err.metadata)
    return code, err.message, ((DETAILS_KEY, details),)


def internal_status() -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """What a client sees of an unexpected failure: no traceback, no internals."""
    message = "internal error; the server logged the details"
    details = status_details(grpc.StatusCode.INTERNAL, message, "INTERNAL", {})
    return grpc.StatusCode.INTERNAL, message, ((DETAILS_KEY, details),)
