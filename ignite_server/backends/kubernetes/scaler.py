"""KEDA's external-push scaler, served by the server itself.

The server's own autoscaler (core/autoscaler.py: in-flight plus queued
requests over ``scale_threshold``, bounded by ``max_replicas`` and
``reserved_capacity``, lowered only after ``scaledown_period_secs``) decides
how many pods a revision needs; it asks the backend for each of them
(``PodBackend.start``) and gives them back (``Pod.stop``). ``Demand`` counts
those per revision: the pods handed out plus the starts still waiting for a
pod. KEDA executes that decision instead of making a second, different one:

* ``IsActive`` / ``StreamIsActive``: demand > 0. The stream pushes each
  change at once, so a request held for a cold revision makes KEDA scale
  0 → 1 without waiting for its polling interval;
* ``GetMetricSpec`` / ``GetMetrics``: metric ``pods`` = demand, target 1 per
  replica, so KEDA's HPA sets the replicas to the demand (1 → N).

A revision the server does not know (another server's, or before a
restart's first request) has no demand and scales to zero.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import structlog
from externalscaler import externalscaler_pb2 as pb
from externalscaler import externalscaler_pb2_grpc as pb_grpc

log = structlog.get_logger(__name__)

METRIC = "pods"
#: A stream re-sends its value this often even without a change: KEDA keeps
#: nothing of a stream that went quiet for long through a proxy.
STREAM_KEEPALIVE_SECS = 30.0


class Demand:
    """Pods wanted per revision, with a wake-up for the streams."""

    def __init__(self) -> None:
        self._pods: dict[str, int] = {}
        self._changed: dict[str, asyncio.Event] = {}

    def get(self, revision: str) -> int:
        return self._pods.get(revision, 0)

    def set(self, revision: str, pods: int) -> None:
        if self._pods.get(revision, 0) != pods:
            self._pods[revision] = pods
            self._event(revision).set()

    def _event(self, revision: str) -> asyncio.Event:
        return self._changed.setdefault(revision, asyncio.Event())

    async def changes(self, revision: str) -> AsyncIterator[int]:
        """The demand now, then after every change (or keep-alive)."""
        event = self._event(revision)
        while True:
            event.clear()
            yield self.get(revision)
            try:
                async with asyncio.timeout(STREAM_KEEPALIVE_SECS):
                    await event.wait()
            except TimeoutError:
                pass


def _revision(ref: pb.ScaledObjectRef) -> str:
    return ref.scalerMetadata.get("revision") or ref.name


class ExternalScaler(pb_grpc.ExternalScalerServicer):
    """externalscaler.ExternalScaler over a ``Demand``."""

    def __init__(self, demand: Demand) -> None:
        self._demand = demand

    async def IsActive(
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> pb.IsActiveResponse:
        return pb.IsActiveResponse(result=self._demand.get(_revision(request)) > 0)

    async def StreamIsActive(
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.IsActiveResponse]:
        last: bool | None = None
        async for pods in self._demand.changes(_revision(request)):
            active = pods > 0
            if active != last:
                last = active
                yield pb.IsActiveResponse(result=active)

    async def GetMetricSpec(
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricSpecResponse:
        return pb.GetMetricSpecResponse(
            metricSpecs=[pb.MetricSpec(metricName=METRIC, targetSize=1, targetSizeFloat=1.0)]
        )

    async def GetMetrics(
        self, request: pb.GetMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricsResponse:
        pods = self._demand.get(_revision(request.scaledObjectRef))
        return pb.GetMetricsResponse(
            metricValues=[
                pb.MetricValue(metricName=METRIC, metricValue=pods, metricValueFloat=float(pods))
            ]
        )


class ScalerServer:
    """The gRPC listener KEDA dials (``scalerAddress`` of the ScaledObjects)."""

    def __init__(self, demand: Demand, listen: str, address: str = "") -> None:
        self._demand = demand
        self._listen = listen
        self._address = address
        self._server: grpc.aio.Server | None = None
        self.address = ""

    async def start(self) -> None:
        self._server = grpc.aio.server()
        pb_grpc.add_ExternalScalerServicer_to_server(ExternalScaler(self._demand), self._server)
        port = self._server.add_insecure_port(self._listen)
        await self._server.start()
        host = self._listen.rpartition(":")[0]
        self.address = self._address or f"{host}:{port}"
        log.info("kubernetes.scaler.serving", address=self.address)

    async def close(self) -> None:
        if self._server is not None:
            await self._server.stop(0.5)
