"""The one error vocabulary of Ignite.

Core code raises these; `ignite_server.api.errors` maps them to gRPC status
codes with a `google.rpc.ErrorInfo` in exactly one place, and the gateway maps
those to HTTP. Every error carries a machine-readable ``reason`` (UPPER_SNAKE,
stable: clients switch on it) and optional ``metadata`` for the ErrorInfo.
Messages are for people and must never contain secrets (env values, tokens).
"""

from __future__ import annotations

from collections.abc import Mapping


class IgniteError(Exception):
    """Base of every domain error."""

    #: Default reason when the raiser gives none.
    default_reason = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(IgniteError):
    """The request itself is wrong, whatever the state of the system."""

    default_reason = "INVALID_ARGUMENT"


class NotFound(IgniteError):
    """The named thing does not exist (or the caller may not know it does)."""

    default_reason = "NOT_FOUND"


class AlreadyExists(IgniteError):
    """A thing with that name exists already."""

    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(IgniteError):
    """The request is valid but the state of the system does not allow it."""

    default_reason = "FAILED_PRECONDITION"


class ResourceExhausted(IgniteError):
    """A queue or quota is full; retry later."""

    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(IgniteError):
    """A dependency (a pod, the database) cannot serve now; retry later."""

    default_reason = "UNAVAILABLE"


class DeadlineExceeded(IgniteError):
    """The work did not finish in the time it was given."""

    default_reason = "DEADLINE_EXCEEDED"


class Unauthenticated(IgniteError):
    """No valid credentials came with the request."""

    default_reason = "UNAUTHENTICATED"


class PermissionDenied(IgniteError):
    """The caller is known but may not do this."""

    default_reason = "PERMISSION_DENIED"


class Aborted(IgniteError):
    """A concurrent change won; the caller may retry."""

    default_reason = "ABORTED"


class Cancelled(IgniteError):
    """The work was cancelled by a caller."""

    default_reason = "CANCELLED"


class Internal(IgniteError):
    """A bug or an invariant broken inside Ignite; never used for bad input."""

    default_reason = "INTERNAL"


class Unimplemented(IgniteError):
    """This platform does not offer the operation (yet, or in this mode)."""

    default_reason = "UNIMPLEMENTED"
