"""Errors the CLI reports, and the exit code each one ends the process with.

Every failure a user can cause or meet ends as one line on stderr and a
non-zero exit code, never a traceback. Server errors arrive as a gRPC status
whose ``grpc-status-details-bin`` trailer holds a ``google.rpc.Status``; its
``ErrorInfo`` carries the machine-readable reason (domain
``ignite.dodil.io``) shown next to the status name.

Exit codes (documented in docs/cli.md; scripts switch on them):

====  =====================================================================
code  meaning
====  =====================================================================
0     success
1     unexpected failure: UNKNOWN, INTERNAL, DATA_LOSS, UNIMPLEMENTED
2     bad usage or input: flags, ids, files, JSON; INVALID_ARGUMENT,
      OUT_OF_RANGE
3     NOT_FOUND
4     ALREADY_EXISTS
5     FAILED_PRECONDITION, ABORTED
6     UNAUTHENTICATED (no or bad token)
7     PERMISSION_DENIED
8     RESOURCE_EXHAUSTED (a queue or quota is full; retry later)
9     UNAVAILABLE (the server or the app cannot serve now; retry later)
10    DEADLINE_EXCEEDED
11    CANCELLED
12    the app ran and failed: an HTTP status >= 400 from the handler, or an
      execution that ended FAILED, TIMEOUT or CANCELLED
130   interrupted (Ctrl-C)
====  =====================================================================
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

#: The domain Ignite's ErrorInfo details carry.
IGNITE_ERROR_DOMAIN = "ignite.dodil.io"

#: The trailer in which gRPC servers send a serialized google.rpc.Status.
STATUS_DETAILS_TRAILER = "grpc-status-details-bin"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_APP_FAILED = 12
EXIT_INTERRUPTED = 130

_EXIT_BY_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_USAGE,
    grpc.StatusCode.OUT_OF_RANGE: EXIT_USAGE,
    grpc.StatusCode.NOT_FOUND: 3,
    grpc.StatusCode.ALREADY_EXISTS: 4,
    grpc.StatusCode.FAILED_PRECONDITION: 5,
    grpc.StatusCode.ABORTED: 5,
    grpc.StatusCode.UNAUTHENTICATED: 6,
    grpc.StatusCode.PERMISSION_DENIED: 7,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 8,
    grpc.StatusCode.UNAVAILABLE: 9,
    grpc.StatusCode.DEADLINE_EXCEEDED: 10,
    grpc.StatusCode.CANCELLED: 11,
}


def exit_code_for(code: grpc.StatusCode) -> int:
    """The process exit code for a gRPC status code."""
    return _EXIT_BY_STATUS.get(code, EXIT_FAILURE)


class CliError(Exception):
    """A failure reported as one line on stderr and an exit code.

    ``details`` are extra lines shown only with ``--verbose``.
    """

    def __init__(
        self, message: str, *, exit_code: int = EXIT_FAILURE, details: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.details = list(details)

    def headline(self) -> str:
        """The one line printed after ``error:``."""
        return self.message


class UsageError(CliError):
    """Bad input caught before anything was sent: ids, files, JSON, flags."""

    def __init__(self, message: str, *, details: Sequence[str] = ()) -> None:
        super().__init__(message, exit_code=EXIT_USAGE, details=details)


class AppFailedError(CliError):
    """The app itself answered with an error, or its execution failed."""

    def __init__(self, message: str, *, details: Sequence[str] = ()) -> None:
        super().__init__(message, exit_code=EXIT_APP_FAILED, details=details)


class ApiError(CliError):
    """A gRPC call that ended with a non-OK status.

    ``reason``, ``domain`` and ``metadata`` come from the ErrorInfo detail
    when the server sent one; ``extra`` holds the other details, formatted.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        description: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: dict[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.code = code
        self.description = description
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        details = []
        if domain:
            details.append(f"domain: {domain}")
        details += [f"metadata: {k}={v}" for k, v in sorted(self.metadata.items())]
        details += extra
        super().__init__(description, exit_code=exit_code_for(code), details=details)

    def headline(self) -> str:
        """``STATUS (REASON): description``, or without the reason if none came."""
        status = self.code.name
        if self.reason and self.reason != status:
            status = f"{status} ({self.reason})"
        return f"{status}: {self.description}" if self.description else status


def api_error_from_rpc(error: grpc.RpcError, *, endpoint: str = "") -> ApiError:
    """Translate a failed call into an ApiError, reading the rich status trailer.

    A call that never reached a server (UNAVAILABLE from the transport) is
    reworded to name the endpoint, since grpc's own text for it is long and
    names an internal resolver state; it stays available with --verbose.
    """
    code: grpc.StatusCode = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    description: str = (error.details() if hasattr(error, "details") else "") or ""
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    status = _rich_status(trailers)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        too_large = _message_too_large(description, status)
        if too_large is not None:
            return too_large
    if status is None:
        if code == grpc.StatusCode.UNAVAILABLE and endpoint and _is_transport_failure(description):
            return ApiError(
                code,
                f"cannot reach the Ignite API at {endpoint}",
                extra=[f"grpc: {description}"],
            )
        return ApiError(code, description)
    return _from_status(code, description or status.message, status.details)


#: ErrorInfo reason of a message over the size limit.
MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"

#: grpc core's own refusal of a message over a limit, from the server's core
#: ("Received": the request) or this process's ("Received": a reply; "Sent":
#: a request over the CLI's own limit). It carries no ErrorInfo.
_CORE_SIZE_ERROR = re.compile(r"(?:Received|Sent) message larger than max \((\d+) vs\. (\d+)\)")


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MiB"


def _message_too_large(description: str, status: status_pb2.Status | None) -> ApiError | None:
    """The one line for a message over a size limit, with the limit, whether
    the server's ErrorInfo says so or grpc core's raw text does; None for
    any other RESOURCE_EXHAUSTED."""
    if status is not None:
        error = _from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, description, status.details)
        if error.reason != MESSAGE_TOO_LARGE:
            return None
        try:
            size = int(error.metadata["size_bytes"])
            limit = int(error.metadata["limit_bytes"])
        except (KeyError, ValueError):
            return error  # the server's own message names the limit
        return ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the request is {_mib(size)}; the server accepts messages up to {_mib(limit)}",
            reason=error.reason,
            domain=error.domain,
            metadata=error.metadata,
        )
    found = _CORE_SIZE_ERROR.search(description)
    if found is None:
        return None
    size, limit = int(found.group(1)), int(found.group(2))
    return ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"a message of {_mib(size)} is over the limit of {_mib(limit)}",
        reason=MESSAGE_TOO_LARGE,
        extra=[f"grpc: {description}"],
    )


#: Phrases of grpc's own messages for a connection that never carried a call.
_TRANSPORT_FAILURES = (
    "failed to connect",
    "dns resolution failed",
    "errors resolving",
    "connection refused",
    "handshake",
    "socket closed",
    "connections to all backends failing",
)


def _is_transport_failure(description: str) -> bool:
    lowered = description.lower()
    return any(phrase in lowered for phrase in _TRANSPORT_FAILURES)


def _rich_status(trailers: object) -> status_pb2.Status | None:
    for key, value in trailers or ():  # type: ignore[attr-defined]
        if key == STATUS_DETAILS_TRAILER and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:  # a garbled trailer must not hide the status itself
                return None
    return None


def _from_status(
    code: grpc.StatusCode, description: str, details: Sequence[any_pb2.Any]
) -> ApiError:
    reason = domain = ""
    metadata: dict[str, str] = {}
    extra: list[str] = []
    for detail in details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            # The first ErrorInfo names the reason; a server sends one.
            if not reason:
                reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
            continue
        extra += describe_detail(detail)
    return ApiError(
        code,
        description,
        reason=reason,
        domain=domain,
        metadata=metadata,
        extra=extra,
    )


def describe_detail(detail: any_pb2.Any) -> list[str]:
    """Readable lines for one google.rpc error detail other than ErrorInfo."""
    bad_request = error_details_pb2.BadRequest()
    if detail.Unpack(bad_request):
        return [f"field {v.field}: {v.description}" for v in bad_request.field_violations]
    precondition = error_details_pb2.PreconditionFailure()
    if detail.Unpack(precondition):
        return [
            f"precondition {v.type} {v.subject}: {v.description}" for v in precondition.violations
        ]
    retry = error_details_pb2.RetryInfo()
    if detail.Unpack(retry):
        return [f"retry after {retry.retry_delay.ToTimedelta().total_seconds():g}s"]
    resource = error_details_pb2.ResourceInfo()
    if detail.Unpack(resource):
        return [
            f"resource {resource.resource_type} {resource.resource_name}: {resource.description}"
        ]
    help_ = error_details_pb2.Help()
    if detail.Unpack(help_):
        return [f"see {link.url} ({link.description})" for link in help_.links]
    localized = error_details_pb2.LocalizedMessage()
    if detail.Unpack(localized):
        return [localized.message]
    debug = error_details_pb2.DebugInfo()
    if detail.Unpack(debug):
        return [f"debug: {debug.detail}", *debug.stack_entries]
    return [f"detail: {detail.type_url}"]
