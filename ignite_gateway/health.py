"""``/healthz`` and ``/readyz``: is the process alive, should it get traffic.

``/healthz`` answers 200 as long as the process serves HTTP at all.
``/readyz`` asks the server's gRPC health service, with a short deadline: 200
``{"status": "SERVING"}`` when it serves, 503 with the state (or the gRPC
code of a failed check) otherwise, and 503 ``DRAINING`` from the moment the
gateway starts shutting down, so a load balancer stops sending requests
while those in flight finish.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc

#: Where liveness and readiness are answered.
HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"

#: Deadline of the readiness probe's health check: short, since a probe
#: that hangs tells a load balancer less than a quick 503.
READY_TIMEOUT_S = 2.0


async def healthz(request: web.Request) -> web.Response:
    """200 ``{"status": "ok"}``: the process is alive."""
    return web.json_response({"status": "ok"})


class Readiness:
    """``/readyz`` for one gateway: its channel's server, unless draining."""

    def __init__(
        self,
        channel: Callable[[], grpc.aio.Channel | None],
        draining: Callable[[], bool],
    ) -> None:
        self._channel = channel
        self._draining = draining

    async def readyz(self, request: web.Request) -> web.Response:
        """The server's health state; 200 only when it is ``SERVING``."""
        channel = self._channel()
        if self._draining() or channel is None:
            return web.json_response({"status": "DRAINING"}, status=503)
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=READY_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            return web.json_response({"status": error.code().name}, status=503)
        state = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return web.json_response({"status": state}, status=200 if state == "SERVING" else 503)
