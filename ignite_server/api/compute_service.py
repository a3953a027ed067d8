"""ComputeService: decode the request, call core, encode the answer.

Nothing here decides anything about apps; it translates. Errors are raised
as domain errors and mapped by api/rpc_boundary.py.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing

import grpc
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_server.api import convert
from ignite_server.api.rpc_boundary import CALLER
from ignite_server.core.apps import Apps
from ignite_server.core.executions import ExecutionService
from ignite_server.core.invocations import Invocations
from ignite_server.core.logs import LogService
from ignite_server.core.secrets import Secrets
from ignite_server.core.traffic import TrafficSplits
from ignite_server.core.versions import Versions
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import Submission
from ignite_server.domain.principal import Permission
from ignite_server.observability import metrics

Context = grpc.aio.ServicerContext


def _manages(organization: str) -> bool:
    """Env values are secrets: only callers who manage the app see them."""
    return CALLER.get().can(Permission.APPS_WRITE, organization)


def _by_host(context: Context) -> bool:
    """Whether the gateway found the app by its URL's host name (the
    ``x-ignite-via: app_url`` it sends with such calls)."""
    for key, value in context.invocation_metadata() or ():
        if key == metrics.VIA_METADATA:
            return (value if isinstance(value, str) else value.decode("latin-1")) == "app_url"
    return False


def _mask_paths(request: compute.UpdateAppRequest | compute.PublishDraftRequest) -> list[str]:
    paths: list[str] = []
    for path in request.update_mask.paths:
        # Accept both proto (snake_case) and JSON (camelCase) spellings.
        paths.append("".join("_" + c.lower() if c.isupper() else c for c in path))
    return paths


class ComputeService:
    """The servicer of dodil.ignite.v1.ComputeService."""

    def __init__(
        self,
        apps: Apps,
        versions: Versions,
        invocations: Invocations,
        executions: ExecutionService,
        logs: LogService,
        secrets: Secrets,
        traffic: TrafficSplits,
    ) -> None:
        self._apps = apps
        self._versions = versions
        self._invocations = invocations
        self._executions = executions
        self._logs = logs
        self._secrets = secrets
        self._traffic = traffic

    # --- apps -----------------------------------------------------------

    async def CreateApp(
        self, request: compute.CreateAppRequest, context: Context
    ) -> compute.CreateAppResponse:
        code = convert.code_from_pb(request.code) if request.HasField("code") else None
        view = await self._apps.create_app(
            request.organization_name,
            request.name,
            convert.settings_from_create(request),
            code,
            CALLER.get(),
        )
        return compute.CreateAppResponse(
            app_id=view.app.id,
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization)),
        )

    async def GetApp(
        self, request: compute.GetAppRequest, context: Context
    ) -> compute.GetAppResponse:
        view = await self._apps.get_app(request.organization_name, request.app_name)
        return compute.GetAppResponse(
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization))
        )

    async def ListApps(
        self, request: compute.ListAppsRequest, context: Context
    ) -> compute.ListAppsResponse:
        page = await self._apps.list_apps(
            request.organization_name, request.page_size, request.page_token
        )
        return compute.ListAppsResponse(
            apps=[convert.app_to_pb(v, show_env=_manages(v.app.organization)) for v in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateApp(
        self, request: compute.UpdateAppRequest, context: Context
    ) -> compute.UpdateAppResponse:
        view = await self._apps.update_app(
            request.organization_name,
            request.app_name,
            convert.changes_from_app(request.app),
            _mask_paths(request),
            changed_by=CALLER.get().subject,
        )
        return compute.UpdateAppResponse(
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization))
        )

    async def DeleteApp(
        self, request: compute.DeleteAppRequest, context: Context
    ) -> compute.DeleteAppResponse:
        await self._apps.delete_app(request.organization_name, request.app_name)
        return compute.DeleteAppResponse(app_id=f"{request.organization_name}/{request.app_name}")

    # --- drafts and versions ----------------------------------------------

    async def SaveDraft(
        self, request: compute.SaveDraftRequest, context: Context
    ) -> compute.SaveDraftResponse:
        draft = await self._apps.save_draft(
            request.organization_name, request.app_name, convert.code_from_pb(request.code)
        )
        return compute.SaveDraftResponse(draft=convert.version_to_pb(draft))

    async def GetDraft(
        self, request: compute.GetDraftRequest, context: Context
    ) -> compute.GetDraftResponse:
        draft = await self._apps.get_draft(request.organization_name, request.app_name)
        return compute.GetDraftResponse(
            draft=convert.version_to_pb(draft), build_log=draft.build_log
        )

    async def CompileDraft(
        self, request: compute.CompileDraftRequest, context: Context
    ) -> compute.CompileDraftResponse:
        draft = await self._versions.compile_draft(request.organization_name, request.app_name)
        return compute.CompileDraftResponse(
            draft=convert.version_to_pb(draft), build_log=draft.build_log
        )

    async def PublishDraft(
        self, request: compute.PublishDraftRequest, context: Context
    ) -> compute.PublishDraftResponse:
        published = await self._versions.publish_draft(
            request.organization_name,
            request.app_name,
            published_by=CALLER.get().subject,
            message=request.message,
            force=request.force,
            rollout=(
                convert.policy_from_pb(request.rollout) if request.HasField("rollout") else None
            ),
            changes=convert.changes_from_app(request.app),
            mask=_mask_paths(request),
        )
        view = published.view
        show_env = _manages(view.app.organization)
        return compute.PublishDraftResponse(
            published_version=published.version.version,
            version=convert.version_to_pb(published.version, view.app, show_env=show_env),
            app=convert.app_to_pb(view, show_env=show_env),
            unchanged=published.unchanged,
        )

    async def ListVersions(
        self, request: compute.ListVersionsRequest, context: Context
    ) -> compute.ListVersionsResponse:
        page, app = await self._versions.list_versions(
            request.organization_name, request.app_name, request.page_size, request.page_token
        )
        show_env = _manages(app.organization)
        return compute.ListVersionsResponse(
            versions=[convert.version_to_pb(v, app, show_env=show_env) for v in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetVersion(
        self, request: compute.GetVersionRequest, context: Context
    ) -> compute.GetVersionResponse:
        version, app = await self._versions.get_version(
            request.organization_name, request.app_name, request.version
        )
        return compute.GetVersionResponse(
            version=convert.version_to_pb(version, app, show_env=_manages(app.organization)),
            build_log=version.build_log,
        )

    async def RollbackApp(
        self, request: compute.RollbackAppRequest, context: Context
    ) -> compute.RollbackAppResponse:
        view = await self._versions.rollback(
            request.organization_name, request.app_name, request.version
        )
        return compute.RollbackAppResponse(
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization))
        )

    async def SetTraffic(
        self, request: compute.SetTrafficRequest, context: Context
    ) -> compute.SetTrafficResponse:
        view = await self._traffic.set_traffic(
            request.organization_name,
            request.app_name,
            convert.traffic_from_pb(list(request.traffic)),
        )
        return compute.SetTrafficResponse(
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization))
        )

    async def TagVersion(
        self, request: compute.TagVersionRequest, context: Context
    ) -> compute.TagVersionResponse:
        view = await self._traffic.tag(
            request.organization_name, request.app_name, request.tag, request.version
        )
        return compute.TagVersionResponse(
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization))
        )

    async def UntagVersion(
        self, request: compute.UntagVersionRequest, context: Context
    ) -> compute.UntagVersionResponse:
        view = await self._traffic.untag(request.organization_name, request.app_name, request.tag)
        return compute.UntagVersionResponse(
            app=convert.app_to_pb(view, show_env=_manages(view.app.organization))
        )

    # --- invocation -----------------------------------------------------

    async def Invoke(
        self, request: compute.InvokeRequest, context: Context
    ) -> AsyncGenerator[compute.InvokeResponse, None]:
        frames = self._invocations.run(
            CALLER.get(),
            request.organization_name,
            request.app_name,
            convert.invocation_from_pb(request.http, request.body),
            version=request.version,
            draft=request.draft,
            tag=request.tag,
            sticky_key=request.sticky_key,
            by_host=_by_host(context),
        )
        async with aclosing(frames):
            async for frame in frames:
                yield convert.frame_to_pb(frame)

    async def GetAnonymousAccess(
        self, request: compute.GetAnonymousAccessRequest, context: Context
    ) -> compute.GetAnonymousAccessResponse:
        # Asked without a token: a server that needs none makes the caller
        # someone (the platform admin), not anonymous.
        all_calls = not CALLER.get().anonymous
        invoke = all_calls or await self._invocations.anonymous_allowed(
            request.organization_name, request.app_name
        )
        return compute.GetAnonymousAccessResponse(invoke=invoke, all_calls=all_calls)

    async def InvokeAsync(
        self, request: compute.InvokeAsyncRequest, context: Context
    ) -> compute.InvokeAsyncResponse:
        execution = await self._executions.submit(
            Submission(
                organization=request.organization_name,
                app=request.app_name,
                request=convert.invocation_from_pb(request.http, request.body),
                version=request.version,
                idempotency_key=request.idempotency_key,
                tag=request.tag,
            )
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

    # --- secrets ----------------------------------------------------------

    async def CreateSecret(
        self, request: compute.CreateSecretRequest, context: Context
    ) -> compute.CreateSecretResponse:
        secret = await self._secrets.create(
            request.organization_name,
            request.name,
            request.username,
            request.password,
            replace=request.replace,
            hosts=list(request.hosts),
        )
        return compute.CreateSecretResponse(secret=convert.secret_to_pb(secret))

    async def ListSecrets(
        self, request: compute.ListSecretsRequest, context: Context
    ) -> compute.ListSecretsResponse:
        secrets = await self._secrets.list(request.organization_name)
        return compute.ListSecretsResponse(secrets=[convert.secret_to_pb(s) for s in secrets])

    async def DeleteSecret(
        self, request: compute.DeleteSecretRequest, context: Context
    ) -> compute.DeleteSecretResponse:
        await self._secrets.delete(request.organization_name, request.name)
        return compute.DeleteSecretResponse(name=request.name)

    async def ListHostConflicts(
        self, request: compute.ListHostConflictsRequest, context: Context
    ) -> compute.ListHostConflictsResponse:
        conflicts = await self._apps.host_conflicts()
        return compute.ListHostConflictsResponse(
            conflicts=[
                compute.HostConflict(
                    label=c.label,
                    organization_name=c.organization,
                    app_name=c.app,
                    found_at_ms=c.found_at_ms,
                )
                for c in conflicts
            ]
        )

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
            await self._apps.get_app(request.organization_name, request.app_name)
        async for entry in self._logs.read(
            request.organization_name,
            request.app_name,
            request.execution_id,
            follow=request.follow,
            since_ms=request.since_ms,
            limit=request.limit,
        ):
            yield compute.ReadLogsResponse(entry=convert.log_entry_to_pb(entry))
