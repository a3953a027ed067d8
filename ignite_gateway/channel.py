"""The one gRPC channel from the gateway to the server, and a callable per RPC.

Every HTTP request the gateway turns into a call goes over this channel. It
is opened when the application starts (grpc.aio needs the running loop) and
closed when it stops; calls still running then are cancelled. The callables
are made once per RPC of the route table, at open, so a request only looks
one up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from ignite_gateway.config import MAX_GRPC_MESSAGE_BYTES, GatewayConfig
from ignite_gateway.transcode import message_class

#: How long, seconds, calls in flight get when the channel closes.
CLOSE_GRACE_S = 1.0


def channel_options(config: GatewayConfig) -> list[tuple[str, Any]]:
    """The channel's options: message limits, reconnect backoff, TLS name."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
        # The server is usually next door: after it restarts, notice
        # within seconds rather than gRPC's default backoff of up to 2 min.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 3000),
    ]
    if config.grpc_tls and config.grpc_server_name:
        options.append(("grpc.ssl_target_name_override", config.grpc_server_name))
    return options


class UpstreamChannel:
    """The gRPC channel to the server (None until opened) and its RPC stubs."""

    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self.channel: grpc.aio.Channel | None = None
        self._stubs: dict[str, Callable[..., Any]] = {}

    async def open(self, methods: Iterable[MethodDescriptor]) -> None:
        """Open the channel (needs the running event loop) and make a
        callable for each of ``methods``."""
        config = self._config
        options = channel_options(config)
        if config.grpc_tls:
            root = None
            if config.grpc_ca_file:
                # Once at start-up, before any request: a blocking read is fine.
                root = _read_file(config.grpc_ca_file)
            credentials = grpc.ssl_channel_credentials(root_certificates=root)
            self.channel = grpc.aio.secure_channel(config.grpc_target, credentials, options)
        else:
            self.channel = grpc.aio.insecure_channel(config.grpc_target, options)
        for method in methods:
            self._stubs[method.full_name] = self._multicallable(self.channel, method)

    def stub(self, method: MethodDescriptor) -> Callable[..., Any]:
        """The callable of ``method``: unary-unary or unary-stream."""
        return self._stubs[method.full_name]

    async def close(self) -> None:
        """Close the channel; calls still running are cancelled."""
        if self.channel is not None:
            await self.channel.close(grace=CLOSE_GRACE_S)
            self.channel = None

    @staticmethod
    def _multicallable(channel: grpc.aio.Channel, method: MethodDescriptor) -> Callable[..., Any]:
        path = f"/{method.containing_service.full_name}/{method.name}"
        output = message_class(method.output_type)
        kwargs: dict[str, Any] = {
            "request_serializer": _serialize,
            "response_deserializer": output.FromString,
        }
        if method.server_streaming:
            return channel.unary_stream(path, **kwargs)
        return channel.unary_unary(path, **kwargs)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()
