"""The grpc.aio server: ComputeService, health, reflection, TLS, shutdown.

Shutdown is graceful: health turns NOT_SERVING first (load balancers and the
gateway's /readyz stop sending), then in-flight calls get ``grace`` seconds
to finish before the server stops. Health also reads NOT_SERVING while the
server's database is down (store/supervisor.py).
"""

from __future__ import annotations

from pathlib import Path

import grpc
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from ignite_server.api.authorization import OrganizationExists
from ignite_server.api.rpc_boundary import MAX_MESSAGE_BYTES, Authenticate, generic_handler

COMPUTE_SERVICE = compute.DESCRIPTOR.services_by_name["ComputeService"]
IDENTITY_SERVICE = identity.DESCRIPTOR.services_by_name["IdentityService"]

#: grpc core's receive limit: well above the documented MAX_MESSAGE_BYTES,
#: which api/rpc_boundary.py enforces with a reason and the limit (core's own
#: refusal has neither), yet bounded, so that no client makes the server
#: buffer an unbounded message. Past it core still refuses with a bare
#: RESOURCE_EXHAUSTED (docs/limits.md).
CORE_RECEIVE_BYTES = 4 * MAX_MESSAGE_BYTES


class GrpcServer:
    """Owns the grpc.aio server and its health state."""

    def __init__(
        self,
        services: dict[str, object],
        authenticate: Authenticate,
        organization_exists: OrganizationExists,
    ) -> None:
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", CORE_RECEIVE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ]
        )
        self._health = health_aio.HealthServicer()
        names = []
        for full_name, servicer in services.items():
            service = compute.DESCRIPTOR.pool.FindServiceByName(full_name)
            self._server.add_generic_rpc_handlers(
                (generic_handler(service, servicer, authenticate, organization_exists),)
            )
            names.append(full_name)
        self._names = names
        self._stopping = False
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
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)

    async def set_serving(self, serving: bool) -> None:
        """Report SERVING or NOT_SERVING (the database went away or came
        back); once stopping, health stays NOT_SERVING."""
        if self._stopping:
            return
        await self._set_health(
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )

    async def _set_health(self, status: int) -> None:
        for name in ("", *self._names):
            await self._health.set(name, status)

    async def stop(self, grace: float) -> None:
        self._stopping = True
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self._server.stop(grace)

    async def wait(self) -> None:
        await self._server.wait_for_termination()
