"""A tiny ComputeService for the gateway's own transcoding, error and
streaming tests: it echoes what it received, so a test can see exactly what
the gateway turned an HTTP request into. End-to-end behaviour is tested
against the real platform elsewhere."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import grpc
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from dodil.ignite.v1 import ignite_identity_pb2_grpc as identity_grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

#: Apps that exist, by (org, app); invoking anything else is NOT_FOUND.
KNOWN_APPS = {
    ("acme-corp", "greet"),
    ("zed", "only-second"),  # found at the second split
    ("b-c", "a"),  # collides with ("c", "a-b"): the longer org wins
    ("c", "a-b"),
    ("acme", "echo"),
    ("acme", "slow"),
    ("acme", "broken"),
    ("acme", "empty"),
    ("y", "retired-x"),  # must never be reached for "retired-x-y"
}


async def abort(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str, reason: str
) -> None:
    """Fail the call the way the Ignite server does: Status + ErrorInfo."""
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.ErrorInfo(
            reason=reason, domain="ignite.dodil.io", metadata={"hint": "from-fake"}
        )
    )
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=[detail])
    await context.abort(
        code, message, trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),)
    )


class FakeCompute(compute_grpc.ComputeServiceServicer):
    """Echoes requests back; records the metadata of every call."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []
        #: Set when a `follow` log stream was cancelled by its caller.
        self.follow_cancelled = asyncio.Event()

    def _record(self, context: grpc.aio.ServicerContext) -> None:
        self.metadata.append({k: v for k, v in context.invocation_metadata() or ()})

    def _app(self, org: str, name: str) -> common.AppMeta:
        return common.AppMeta(
            id=f"{org}/{name}",
            name=name,
            organization_name=org,
            created_at_ms=1_700_000_000_123,
            deployment_state=common.DEPLOYMENT_STATE_CREATED,
            resource_tier=common.RESOURCE_TIER_SMALL,
        )

    async def CreateApp(self, request: Any, context: Any) -> Any:
        self._record(context)
        if request.name == "exists":
            await abort(
                context,
                grpc.StatusCode.ALREADY_EXISTS,
                f"app {request.organization_name}/exists exists",
                "APP_ALREADY_EXISTS",
            )
        app = self._app(request.organization_name, request.name)
        app.description = request.description
        app.resource_tier = request.resource_tier
        app.env.update(request.env)
        return compute.CreateAppResponse(app_id=app.id, app=app)

    async def GetApp(self, request: Any, context: Any) -> Any:
        self._record(context)
        if request.app_name == "missing":
            await abort(context, grpc.StatusCode.NOT_FOUND, "no such app", "APP_NOT_FOUND")
        if request.app_name == "crash":
            await context.abort(grpc.StatusCode.INTERNAL, "boom")
        for code in grpc.StatusCode:
            if request.app_name == f"status-{code.name.lower().replace('_', '-')}":
                await abort(context, code, code.name, code.name)
        return compute.GetAppResponse(app=self._app(request.organization_name, request.app_name))

    async def ListApps(self, request: Any, context: Any) -> Any:
        self._record(context)
        # The query parameters, echoed as an app name.
        name = f"{request.page_size}:{request.page_token}"
        return compute.ListAppsResponse(
            apps=[self._app(request.organization_name, name)], next_page_token="next"
        )

    async def UpdateApp(self, request: Any, context: Any) -> Any:
        self._record(context)
        app = compute.UpdateAppResponse(app=request.app).app
        app.id = f"{request.organization_name}/{request.app_name}"
        app.description = app.description + "|" + ",".join(request.update_mask.paths)
        return compute.UpdateAppResponse(app=app)

    async def SaveDraft(self, request: Any, context: Any) -> Any:
        self._record(context)
        source = request.code.compile.source_code
        return compute.SaveDraftResponse(
            draft=compute.AppVersionInfo(
                version=0,
                status=common.VERSION_STATUS_DRAFT,
                code_hash=hashlib.sha256(source).hexdigest(),
                code_size_bytes=len(source),
            )
        )

    async def GetVersion(self, request: Any, context: Any) -> Any:
        self._record(context)
        return compute.GetVersionResponse(
            version=compute.AppVersionInfo(version=request.version), build_log="ok"
        )

    async def ListExecutions(self, request: Any, context: Any) -> Any:
        self._record(context)
        return compute.ListExecutionsResponse(
            executions=[
                common.Execution(
                    id="x",
                    app_id=request.app_name,
                    status=request.status,
                    result=b"\x00\x01binary",
                    metrics=common.ExecutionMetrics(cold_start_ms=2**40),
                )
            ]
        )

    async def Invoke(self, request: Any, context: Any) -> Any:
        self._record(context)
        if request.app_name == "retired":
            # The app exists; what is missing is inside it.
            await abort(
                context, grpc.StatusCode.NOT_FOUND, "no active version", "VERSION_NOT_FOUND"
            )
        if (request.organization_name, request.app_name) not in KNOWN_APPS:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"app {request.organization_name}/{request.app_name} not found",
                "APP_NOT_FOUND",
            )
        head = compute.InvokeHead(
            status_code=201,
            response_headers={
                "content-type": "application/json",
                "x-app": f"{request.organization_name}/{request.app_name}",
                "connection": "close",  # hop-by-hop: must not be relayed
            },
            execution_id="01HEXECUTION",
        )
        if request.app_name == "empty":
            head.status_code = 204
        yield compute.InvokeResponse(head=head)
        if request.app_name == "slow":
            for piece in (b"first;", b"second;"):
                yield compute.InvokeResponse(chunk=compute.InvokeChunk(data=piece))
                await asyncio.sleep(0.6)
            yield compute.InvokeResponse(
                trailer=compute.InvokeTrailer(total_body_bytes=13, duration_ms=1200)
            )
            return
        if request.app_name == "broken":
            yield compute.InvokeResponse(chunk=compute.InvokeChunk(data=b"partial"))
            await abort(context, grpc.StatusCode.UNAVAILABLE, "pod died", "POD_CRASHED")
        echo = json.dumps(
            {
                "method": common.HttpMethod.Name(request.http.method),
                "path": request.http.path,
                "query": request.http.query,
                "headers": dict(request.http.headers),
                "body": request.body.decode("utf-8", "replace"),
                "org": request.organization_name,
                "app": request.app_name,
            }
        ).encode()
        if request.app_name != "empty":
            # Two chunks, to show they are relayed in order.
            middle = len(echo) // 2
            yield compute.InvokeResponse(chunk=compute.InvokeChunk(data=echo[:middle]))
            yield compute.InvokeResponse(chunk=compute.InvokeChunk(data=echo[middle:]))
        yield compute.InvokeResponse(
            trailer=compute.InvokeTrailer(
                total_body_bytes=len(echo) if request.app_name != "empty" else 0,
                duration_ms=7,
                trailers={"x-pod-trailer": "yes"},
            )
        )

    async def ReadLogs(self, request: Any, context: Any) -> Any:
        self._record(context)
        if request.app_name == "missing":
            await abort(context, grpc.StatusCode.NOT_FOUND, "no such app", "APP_NOT_FOUND")
        for index in range(3):
            yield compute.ReadLogsResponse(
                entry=compute.LogEntry(
                    timestamp_ms=1_700_000_000_000 + index,
                    app_id=f"{request.organization_name}/{request.app_name}",
                    execution_id=request.execution_id,
                    stream=compute.LOG_STREAM_STDOUT,
                    message=f"line {index}",
                )
            )
        if request.app_name == "failing":
            await abort(context, grpc.StatusCode.UNAVAILABLE, "log store down", "LOGS_UNAVAILABLE")
        if request.follow and request.app_name == "greet":
            try:
                await asyncio.sleep(1.5 if request.limit == 0 else 30)
            except asyncio.CancelledError:
                self.follow_cancelled.set()
                raise
            yield compute.ReadLogsResponse(entry=compute.LogEntry(message="late"))


class FakeIdentity(identity_grpc.IdentityServiceServicer):
    """Issues a token to client "good" with secret "s3cret"."""

    def __init__(self, fake: FakeCompute) -> None:
        self._fake = fake  # metadata goes to the same record

    async def IssueToken(self, request: Any, context: Any) -> Any:
        self._fake._record(context)
        if (request.client_id, request.client_secret) != ("good", "s3cret"):
            await abort(
                context,
                grpc.StatusCode.UNAUTHENTICATED,
                "invalid client credentials",
                "INVALID_CLIENT",
            )
        return identity.IssueTokenResponse(
            access_token="tok-good", token_type="Bearer", expires_in=3600
        )

    async def GetJwks(self, request: Any, context: Any) -> Any:
        return identity.GetJwksResponse(jwks_json='{"keys":[{"kty":"OKP","kid":"k1"}]}')


async def _unimplemented(self: FakeCompute, request: Any, context: Any) -> Any:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the fake")


# The RPCs the fake has no use for answer as an honest server would.
for _name in (
    "DeleteApp",
    "GetDraft",
    "CompileDraft",
    "PublishDraft",
    "ListVersions",
    "RollbackApp",
    "InvokeAsync",
    "GetExecution",
    "CancelExecution",
):
    setattr(FakeCompute, _name, _unimplemented)


async def start_fake_server(
    port: int = 0,
) -> tuple[grpc.aio.Server, FakeCompute, health.aio.HealthServicer, str]:
    """A real grpc.aio server on loopback (a free port by default), with a
    health service."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ]
    )
    fake = FakeCompute()
    compute_grpc.add_ComputeServiceServicer_to_server(fake, server)
    identity_grpc.add_IdentityServiceServicer_to_server(FakeIdentity(fake), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, fake, health_servicer, f"127.0.0.1:{port}"
