"""The grpc.aio server: ComputeService, health, reflection, TLS, shutdown.

Shutdown is graceful: health turns NOT_SERVING first (load balancers and the
gateway's /readyz stop sending), then in-flight calls get ``grace`` seconds
to finish before the server stops.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from ignite_server.api.rpc_boundary import Authenticate, generic_handler

COMPUTE_SERVICE = compute.DESCRIPTOR.services_by_name["ComputeService"]
IDENTITY_SERVICE = identity.DESCRIPTOR.services_by_name["IdentityService"]

#: Invoke requests carry whole bodies (the largest documented payload is
#: 32 MiB, sent base64-free over gRPC) plus the envelope.
MAX_MESSAGE_BYTES = 34 * 1024 * 1024


class GrpcServer:
    """Owns the grpc.aio server and its health state."""

    def __init__(self, services: dict[str, object], authenticate: Authenticate) -> None:
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ]
        )
        self._health = health_aio.HealthServicer()
        names = []
        for full_name, servicer in services.items():
            service = compute.DESCRIPTOR.pool.FindServiceByName(full_name)
            self._server.add_generic_rpc_handlers(
                (generic_handler(service, servicer, authenticate),)
            )
            names.append(full_name)
        self._names = names
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (
                *names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self._server,
        )

    def bind(self, listen: str, tls_cert: Path | None, tls_key: Path | None) -> int:
        """Listen on ``listen``; return the bound port (useful with port 0)."""
        if tls_cert is not None and tls_key is not None:
            credentials = grpc.ssl_server_credentials(
                [(tls_key.read_bytes(), tls_cert.read_bytes())]
            )
            port = self._server.add_secure_port(listen, credentials)
        else:
            port = self._server.add_insecure_port(listen)
        if port == 0:
            raise OSError(f"cannot listen on {listen}")
        return port

    async def start(self) -> None:
        await self._server.start()
        for name in ("", *self._names):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        for name in ("", *self._names):
            await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self._server.stop(grace)

    async def wait(self) -> None:
        await self._server.wait_for_termination()
