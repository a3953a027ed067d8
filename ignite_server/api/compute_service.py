"""ComputeService: decode the request, call core, encode the answer.

Nothing here decides anything about apps; it translates. Errors are raised
as domain errors and mapped by api/rpc_boundary.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import structlog
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from ulid import ULID

from ignite_server.api import convert
from ignite_server.api.rpc_boundary import CALLER
from ignite_server.core.executions import ExecutionService
from ignite_server.core.lifecycle import Lifecycle
from ignite_server.core.logs import LogService
from ignite_server.domain.errors import InvalidArgument, Unauthenticated, Unavailable
from ignite_server.domain.principal import Permission
from ignite_server.ports.app_runner import AppRunner

log = structlog.get_logger("ignite.invoke")

Context = grpc.aio.ServicerContext


def _manages(organization: str) -> bool:
    """Env values are secrets: only callers who manage the app see them."""
    return CALLER.get().can(Permission.APPS_WRITE, organization)


def _mask_paths(request: compute.UpdateAppRequest) -> list[str]:
    paths: list[str] = []
    for path in request.update_mask.paths:
        # Accept both proto (snake_case) and JSON (camelCase) spellings.
        paths.append("".join("_" + c.lower() if c.isupper() else c for c in path))
    return paths


class ComputeService:
    """The servicer of dodil.ignite.v1.ComputeService."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        runner: AppRunner | None,
        executions: ExecutionService,
        logs: LogService,
    ) -> None:
        self._lifecycle = lifecycle
        self._runner = runner
        self._executions = executions
        self._logs = logs

    # --- apps -----------------------------------------------------------

    async def CreateApp(
        self, request: compute.CreateAppRequest, context: Context
    ) -> compute.CreateAppResponse:
        code = convert.code_from_pb(request.code) if request.HasField("code") else None
        view = await self._lifecycle.create_app(
            request.organization_name, request.name, convert.settings_from_create(request), code
        )
        return compute.CreateAppResponse(
            app_id=view.app.id,
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization)),
        )

    async def GetApp(
        self, request: compute.GetAppRequest, context: Context
    ) -> compute.GetAppResponse:
        view = await self._lifecycle.get_app(request.organization_name, request.app_name)
        return compute.GetAppResponse(
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization))
        )

    async def ListApps(
        self, request: compute.ListAppsRequest, context: Context
    ) -> compute.ListAppsResponse:
        page = await self._lifecycle.list_apps(
            request.organization_name, request.page_size, request.page_token
        )
        return compute.ListAppsResponse(
            apps=[convert.app_to_pb(v, show_env=_manages(v.app.organization)) for v in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateApp(
        self, request: compute.UpdateAppRequest, context: Context
    ) -> compute.UpdateAppResponse:
        view = await self._lifecycle.update_app(
            request.organization_name,
            request.app_name,
            convert.changes_from_app(request.app),
            _mask_paths(request),
        )
        return compute.UpdateAppResponse(
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization))
        )

    async def DeleteApp(
        self, request: compute.DeleteAppRequest, context: Context
    ) -> compute.DeleteAppResponse:
        await self._lifecycle.delete_app(request.organization_name, request.app_name)
        return compute.DeleteAppResponse(app_id=f"{request.organization_name}/{request.app_name}")

    # --- drafts and versions ----------------------------------------------

    async def SaveDraft(
        self, request: compute.SaveDraftRequest, context: Context
    ) -> compute.SaveDraftResponse:
        draft = await self._lifecycle.save_draft(
            request.organization_name, request.app_name, convert.code_from_pb(request.code)
        )
        return compute.SaveDraftResponse(draft=convert.version_to_pb(draft))

    async def GetDraft(
        self, request: compute.GetDraftRequest, context: Context
    ) -> compute.GetDraftResponse:
        draft = await self._lifecycle.get_draft(request.organization_name, request.app_name)
        return compute.GetDraftResponse(
            draft=convert.version_to_pb(draft), build_log=draft.build_log
        )

    async def CompileDraft(
        self, request: compute.CompileDraftRequest, context: Context
    ) -> compute.CompileDraftResponse:
        draft = await self._lifecycle.compile_draft(request.organization_name, request.app_name)
        return compute.CompileDraftResponse(
            draft=convert.version_to_pb(draft), build_log=draft.build_log
        )

    async def PublishDraft(
        self, request: compute.PublishDraftRequest, context: Context
    ) -> compute.PublishDraftResponse:
        version, view = await self._lifecycle.publish_draft(
            request.organization_name, request.app_name
        )
        return compute.PublishDraftResponse(
            published_version=version.version,
            version=convert.version_to_pb(version),
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization)),
        )

    async def ListVersions(
        self, request: compute.ListVersionsRequest, context: Context
    ) -> compute.ListVersionsResponse:
        page = await self._lifecycle.list_versions(
            request.organization_name, request.app_name, request.page_size, request.page_token
        )
        return compute.ListVersionsResponse(
            versions=[convert.version_to_pb(v) for v in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetVersion(
        self, request: compute.GetVersionRequest, context: Context
    ) -> compute.GetVersionResponse:
        version = await self._lifecycle.get_version(
            request.organization_name, request.app_name, request.version
        )
        return compute.GetVersionResponse(
            version=convert.version_to_pb(version), build_log=version.build_log
        )

    async def RollbackApp(
        self, request: compute.RollbackAppRequest, context: Context
    ) -> compute.RollbackAppResponse:
        view = await self._lifecycle.rollback(
            request.organization_name, request.app_name, request.version
        )
        return compute.RollbackAppResponse(
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization))
        )

    # --- invocation -----------------------------------------------------

    async def Invoke(
        self, request: compute.InvokeRequest, context: Context
    ) -> AsyncIterator[compute.InvokeResponse]:
        if request.draft and request.version:
            raise InvalidArgument(
                "set either version or draft, not both",
                reason="CONFLICTING_TARGET",
                metadata={"field": "version"},
            )
        invocation = convert.invocation_from_pb(request.http, request.body)
        if CALLER.get().anonymous:
            await self._admit_anonymous(request)
        target = await self._lifecycle.run_target(
            request.organization_name, request.app_name, request.version, request.draft
        )
        if self._runner is None:
            raise Unavailable("this server runs no pods", reason="NO_POD_BACKEND")
        execution_id = str(ULID())
        # Sync invocations store no record; this line is their trace.
        log.info(
            "invoke", app=target.app.id, version=target.version.version, execution_id=execution_id
        )
        async for frame in self._runner.invoke(target, invocation, execution_id):
            yield convert.frame_to_pb(frame)

    async def _admit_anonymous(self, request: compute.InvokeRequest) -> None:
        """Anonymous callers may invoke the active version of public apps only;
        for any other app they learn nothing, not even that it exists."""
        app = await self._lifecycle.stored_app(request.organization_name, request.app_name)
        if app is None or not app.allow_unauthenticated or request.draft or request.version:
            raise Unauthenticated(
                "this call needs 'Authorization: Bearer <token>'", reason="TOKEN_REQUIRED"
            )

    async def InvokeAsync(
        self, request: compute.InvokeAsyncRequest, context: Context
    ) -> compute.InvokeAsyncResponse:
        execution = await self._executions.submit(
            request.organization_name,
            request.app_name,
            convert.invocation_from_pb(request.http, request.body),
            request.version,
            request.idempotency_key,
        )
        return compute.InvokeAsyncResponse(
            execution_id=execution.id, execution=convert.execution_to_pb(execution)
        )

    async def GetExecution(
        self, request: compute.GetExecutionRequest, context: Context
    ) -> compute.GetExecutionResponse:
        execution = await self._executions.get(request.organization_name, request.execution_id)
        return compute.GetExecutionResponse(execution=convert.execution_to_pb(execution))

    async def ListExecutions(
        self, request: compute.ListExecutionsRequest, context: Context
    ) -> compute.ListExecutionsResponse:
        page = await self._executions.list(
            request.organization_name,
            request.app_name,
            request.status,
            request.page_size,
            request.page_token,
        )
        return compute.ListExecutionsResponse(
            executions=[convert.execution_to_pb(e) for e in page.items],
            next_page_token=page.next_page_token,
        )

    async def CancelExecution(
        self, request: compute.CancelExecutionRequest, context: Context
    ) -> compute.CancelExecutionResponse:
        execution = await self._executions.cancel(request.organization_name, request.execution_id)
        return compute.CancelExecutionResponse(execution=convert.execution_to_pb(execution))

    async def ReadLogs(
        self, request: compute.ReadLogsRequest, context: Context
    ) -> AsyncIterator[compute.ReadLogsResponse]:
        if not request.app_name and not request.execution_id:
            raise InvalidArgument(
                "name an app or an execution",
                reason="LOG_SELECTOR_REQUIRED",
                metadata={"field": "app_name"},
            )
        if request.app_name:
            # Unknown apps are NOT_FOUND rather than an empty log.
            await self._lifecycle.get_app(request.organization_name, request.app_name)
        async for entry in self._logs.read(
            request.organization_name,
            request.app_name,
            request.execution_id,
            follow=request.follow,
            since_ms=request.since_ms,
            limit=request.limit,
        ):
            yield compute.ReadLogsResponse(entry=convert.log_entry_to_pb(entry))
