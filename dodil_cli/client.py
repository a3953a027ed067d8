"""The connection to the Ignite API: one gRPC channel, the ComputeService and
IdentityService stubs.

Every call carries the bearer token (when there is one) as
``authorization: Bearer <token>`` metadata, and a deadline; failures come out
as :class:`~dodil_cli.errors.ApiError`, never as a raw ``grpc.RpcError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import grpc
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc
from dodil.ignite.v1 import ignite_identity_pb2_grpc as identity_grpc
from google.protobuf.message import Message

from dodil_cli import __version__
from dodil_cli.endpoint import Endpoint
from dodil_cli.errors import api_error_from_rpc

#: Deadline of ordinary calls; they touch the database only.
DEFAULT_TIMEOUT_SECONDS = 60.0
#: Uploads of whole projects may be tens of MB; the server sets its own limit.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

M = TypeVar("M", bound=Message)


class Client:
    """A ComputeService client bound to one endpoint and one token."""

    def __init__(self, endpoint: Endpoint, *, tls: bool, token: str | None) -> None:
        self.endpoint = endpoint
        # Named in "cannot reach" errors: a TLS/plaintext mismatch is the
        # usual reason a reachable host does not answer.
        self._where = f"{endpoint.target} ({'TLS' if tls else 'plaintext'})"
        options = [
            ("grpc.primary_user_agent", f"dodil-cli/{__version__}"),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls:
            self._channel = grpc.secure_channel(
                endpoint.target, grpc.ssl_channel_credentials(), options=options
            )
        else:
            self._channel = grpc.insecure_channel(endpoint.target, options=options)
        self._stubs = {
            "compute": compute_grpc.ComputeServiceStub(self._channel),
            "identity": identity_grpc.IdentityServiceStub(self._channel),
        }
        # Sent as plain metadata rather than call credentials: gRPC refuses
        # call credentials on insecure channels, and a local platform is
        # plaintext.
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def call(
        self,
        method: str,
        request: Message,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
        service: str = "compute",
    ) -> Any:
        """Call a unary RPC by name (e.g. ``GetApp``) and return its response.

        ``service`` is ``compute`` (ComputeService) or ``identity``
        (IdentityService).
        """
        rpc = getattr(self._stubs[service], method)
        try:
            return rpc(request, timeout=timeout, metadata=self._metadata, wait_for_ready=False)
        except grpc.RpcError as exc:
            raise api_error_from_rpc(exc, endpoint=self._where) from None

    def stream(
        self, method: str, request: Message, *, timeout: float | None = None
    ) -> Iterator[Any]:
        """Call a server-streaming RPC by name and yield its messages.

        Closing the iterator early (Ctrl-C, or a caller that stops reading)
        cancels the call on the server.
        """
        rpc = getattr(self._stubs["compute"], method)
        responses = rpc(request, timeout=timeout, metadata=self._metadata)
        try:
            yield from responses
        except grpc.RpcError as exc:
            raise api_error_from_rpc(exc, endpoint=self._where) from None
        finally:
            responses.cancel()
