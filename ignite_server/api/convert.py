"""Protobuf messages ↔ core's dataclasses. Nothing else in the server
touches generated message classes outside api/."""

from __future__ import annotations

from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import (
    App,
    AppSettings,
    AppView,
    CodeUpload,
    Execution,
    ImageSpec,
    InvocationRequest,
    Limits,
    LogEntry,
    ResourceTier,
    ResponseChunk,
    ResponseFrame,
    ResponseHead,
    ResponseTrailer,
    RolloutPolicy,
    RolloutStatus,
    RuntimeKind,
    RuntimeSpec,
    RuntimeTarget,
    ScaleMetric,
    Scaling,
    ScalingInput,
    Secret,
    StorageMode,
    TrafficTarget,
    UploadKind,
    Version,
    VersionSettings,
)

_HTTP_METHODS = {
    common.HTTP_METHOD_UNSPECIFIED: "POST",
    common.HTTP_METHOD_GET: "GET",
    common.HTTP_METHOD_POST: "POST",
    common.HTTP_METHOD_PUT: "PUT",
    common.HTTP_METHOD_PATCH: "PATCH",
    common.HTTP_METHOD_DELETE: "DELETE",
    common.HTTP_METHOD_HEAD: "HEAD",
    common.HTTP_METHOD_OPTIONS: "OPTIONS",
}


# --- runtime ----------------------------------------------------------------


def runtime_from_pb(runtime: common.Runtime) -> RuntimeSpec | None:
    which = runtime.WhichOneof("runtime")
    if which is None:
        return None
    kind = RuntimeKind(which)
    if which in ("python", "deno"):
        return RuntimeSpec(kind=kind, version=getattr(runtime, which).version)
    sub = getattr(runtime, which)
    if sub.target not in RuntimeTarget.__members__.values():
        raise InvalidArgument(
            "unknown runtime target", reason="INVALID_ENUM", metadata={"field": "runtime.target"}
        )
    return RuntimeSpec(kind=kind, target=RuntimeTarget(sub.target), toolchain=sub.toolchain)


def runtime_to_pb(spec: RuntimeSpec | None) -> common.Runtime:
    runtime = common.Runtime()
    if spec is None:
        return runtime
    if spec.kind == RuntimeKind.PYTHON:
        runtime.python.version = spec.version
    elif spec.kind == RuntimeKind.DENO:
        runtime.deno.version = spec.version
    else:
        sub = runtime.rust if spec.kind == RuntimeKind.RUST else runtime.go
        sub.target = int(spec.target)  # type: ignore[assignment]
        sub.toolchain = spec.toolchain
    return runtime


# --- app settings -----------------------------------------------------------


def limits_from_pb(limits: common.ResourceLimits) -> Limits:
    return Limits(
        memory_mb=limits.memory_mb if limits.HasField("memory_mb") else None,
        cpu_millicores=limits.cpu_millicores if limits.HasField("cpu_millicores") else None,
        timeout_secs=limits.timeout_secs if limits.HasField("timeout_secs") else None,
    )


def limits_to_pb(limits: Limits) -> common.ResourceLimits:
    out = common.ResourceLimits()
    if limits.memory_mb is not None:
        out.memory_mb = limits.memory_mb
    if limits.cpu_millicores is not None:
        out.cpu_millicores = limits.cpu_millicores
    if limits.timeout_secs is not None:
        out.timeout_secs = limits.timeout_secs
    return out


def scaling_from_pb(scaling: common.ScalingConfig) -> ScalingInput:
    if scaling.scale_metric not in ScaleMetric.__members__.values():
        raise InvalidArgument(
            "unknown scale_metric",
            reason="INVALID_ENUM",
            metadata={"field": "scaling.scale_metric"},
        )
    return ScalingInput(
        max_replicas=scaling.max_replicas,
        reserved_capacity=scaling.reserved_capacity,
        scale_threshold=scaling.scale_threshold,
        scale_metric=ScaleMetric(scaling.scale_metric),
        scaledown_period_secs=scaling.scaledown_period_secs,
    )


def scaling_to_pb(scaling: Scaling | ScalingInput) -> common.ScalingConfig:
    return common.ScalingConfig(
        max_replicas=scaling.max_replicas,
        reserved_capacity=scaling.reserved_capacity,
        scale_threshold=scaling.scale_threshold,
        scale_metric=int(scaling.scale_metric),  # type: ignore[arg-type]
        scaledown_period_secs=scaling.scaledown_period_secs,
    )


def _enum(value: int, enum_type: type, field: str) -> object:
    try:
        return enum_type(value)
    except ValueError:
        raise InvalidArgument(
            f"unknown {field} value {value}", reason="INVALID_ENUM", metadata={"field": field}
        ) from None


def settings_from_create(request: compute.CreateAppRequest) -> AppSettings:
    return AppSettings(
        runtime=runtime_from_pb(request.runtime),
        tier=_enum(request.resource_tier, ResourceTier, "resource_tier"),  # type: ignore[arg-type]
        limits=limits_from_pb(request.limits),
        scaling=scaling_from_pb(request.scaling),
        env=dict(request.env),
        storage_mode=_enum(request.storage_mode, StorageMode, "storage_mode"),  # type: ignore[arg-type]
        ttl_seconds=request.ttl_seconds,
        description=request.description,
        input_schema=request.input_schema,
        output_schema=request.output_schema,
        mcp_enabled=request.mcp_enabled,
        max_concurrency=request.max_concurrency,
        allow_unauthenticated=request.allow_unauthenticated,
    )


def changes_from_app(app: common.AppMeta) -> dict[str, object]:
    """UpdateApp's values, keyed by AppMeta field name (the mask vocabulary)."""
    return {
        "description": app.description,
        "env": dict(app.env),
        "resource_tier": _enum(app.resource_tier, ResourceTier, "app.resource_tier"),
        "limits": limits_from_pb(app.limits),
        "scaling": scaling_from_pb(app.scaling),
        "storage_mode": _enum(app.storage_mode, StorageMode, "app.storage_mode"),
        "ttl_seconds": app.ttl_seconds,
        "input_schema": app.input_schema,
        "output_schema": app.output_schema,
        "mcp_enabled": app.mcp_enabled,
        "max_concurrency": app.max_concurrency,
        "allow_unauthenticated": app.allow_unauthenticated,
        "runtime": runtime_from_pb(app.runtime),
    }


def app_to_pb(view: AppView, *, show_env: bool = True) -> common.AppMeta:
    app: App = view.app
    meta = common.AppMeta(
        id=app.id,
        name=app.name,
        organization_name=app.organization,
        runtime=runtime_to_pb(app.runtime),
        resource_tier=int(app.tier),  # type: ignore[arg-type]
        limits=limits_to_pb(app.limits),
        scaling=scaling_to_pb(app.scaling),
        storage_mode=int(app.storage_mode),  # type: ignore[arg-type]
        ttl_seconds=app.ttl_seconds,
        deployment_state=int(view.deployment_state),  # type: ignore[arg-type]
        version=app.active_version,
        active_version=app.active_version,
        description=app.description,
        input_schema=app.input_schema,
        output_schema=app.output_schema,
        mcp_enabled=app.mcp_enabled,
        max_concurrency=app.max_concurrency,
        deployment_mode=int(app.deployment_mode),  # type: ignore[arg-type]
        code_kind=int(app.code_kind),  # type: ignore[arg-type]
        image_ref=app.image_ref,
        public_urls=view.public_urls,
        allow_unauthenticated=app.allow_unauthenticated,
        ready_replicas=view.ready_replicas,
        status_message=view.status_message,
        created_at_ms=app.created_at_ms,
        updated_at_ms=app.updated_at_ms,
    )
    if show_env:
        meta.env.update(app.env)
    meta.traffic.extend(traffic_to_pb(t) for t in app.traffic)
    meta.tags.update(app.tags)
    if view.rollout is not None:
        meta.rollout.CopyFrom(rollout_to_pb(view.rollout))
    return meta


# --- traffic and rollouts -----------------------------------------------------


def traffic_to_pb(target: TrafficTarget) -> common.TrafficTarget:
    return common.TrafficTarget(version=target.version, percent=target.percent)


def traffic_from_pb(targets: list[common.TrafficTarget]) -> list[TrafficTarget]:
    return [TrafficTarget(version=t.version, percent=t.percent) for t in targets]


def policy_from_pb(policy: common.RolloutPolicy) -> RolloutPolicy:
    return RolloutPolicy(
        steps=tuple(policy.steps),
        step_secs=policy.step_secs,
        max_error_rate_increase_pct=policy.max_error_rate_increase_pct,
        max_p95_increase_pct=policy.max_p95_increase_pct,
        min_requests=policy.min_requests,
    )


def policy_to_pb(policy: RolloutPolicy) -> common.RolloutPolicy:
    return common.RolloutPolicy(
        steps=list(policy.steps),
        step_secs=policy.step_secs,
        max_error_rate_increase_pct=policy.max_error_rate_increase_pct,
        max_p95_increase_pct=policy.max_p95_increase_pct,
        min_requests=policy.min_requests,
    )


def rollout_to_pb(status: RolloutStatus) -> common.RolloutStatus:
    return common.RolloutStatus(
        state=int(status.state),  # type: ignore[arg-type]
        from_version=status.from_version,
        to_version=status.to_version,
        policy=policy_to_pb(status.policy),
        step=status.step,
        percent=status.percent,
        decision=status.decision,
        started_at_ms=status.started_at_ms,
        step_started_at_ms=status.step_started_at_ms,
        updated_at_ms=status.updated_at_ms,
    )


# --- code -------------------------------------------------------------------


def code_from_pb(code: compute.CodeSource, field: str = "code") -> CodeUpload:
    branch = code.WhichOneof("source")
    if branch == "compile":
        body = code.compile.WhichOneof("body")
        if body is None:
            raise InvalidArgument(
                "compile needs source_code or archive",
                reason="CODE_REQUIRED",
                metadata={"field": f"{field}.compile"},
            )
        return CodeUpload(
            kind=UploadKind.SOURCE_FILE if body == "source_code" else UploadKind.ARCHIVE,
            runtime=runtime_from_pb(code.compile.runtime),
            data=getattr(code.compile, body),
            build_args=dict(code.compile.build_args),
        )
    if branch == "image":
        image = code.image
        variant = image.WhichOneof("variant")
        if variant == "prebuilt":
            return CodeUpload(
                UploadKind.PREBUILT_IMAGE,
                None,
                image=ImageSpec(
                    source=image.prebuilt.image_ref.strip(),
                    secret_ref=image.prebuilt.registry_secret_ref,
                    health_path=image.health_path,
                ),
            )
        if variant == "from_code":
            return CodeUpload(
                UploadKind.IMAGE_FROM_CODE,
                None,
                data=image.from_code.archive,
                build_args=dict(image.from_code.build_args),
                image=ImageSpec(
                    dockerfile_path=image.from_code.dockerfile_path,
                    health_path=image.health_path,
                ),
            )
        if variant == "from_git":
            source = image.from_git
            if not source.repo_url:
                raise InvalidArgument(
                    "image.from_git.repo_url is required",
                    reason="REPO_URL_REQUIRED",
                    metadata={"field": f"{field}.image.from_git.repo_url"},
                )
            return CodeUpload(
                UploadKind.IMAGE_FROM_GIT,
                None,
                image=ImageSpec(
                    source=source.repo_url.strip(),
                    git_ref=source.ref,
                    context_dir=source.context_dir,
                    secret_ref=source.git_secret_ref,
                    health_path=image.health_path,
                ),
            )
    raise InvalidArgument(
        "code needs a compile or an image source", reason="CODE_REQUIRED", metadata={"field": field}
    )


def secret_to_pb(secret: Secret) -> compute.SecretInfo:
    return compute.SecretInfo(
        name=secret.name,
        username=secret.username,
        created_at_ms=secret.created_at_ms,
        updated_at_ms=secret.updated_at_ms,
        hosts=list(secret.hosts),
    )


def version_settings_to_pb(settings: VersionSettings, *, show_env: bool) -> compute.VersionSettings:
    out = compute.VersionSettings(
        resource_tier=int(settings.tier),  # type: ignore[arg-type]
        limits=limits_to_pb(settings.limits),
        scaling=scaling_to_pb(settings.scaling),
        max_concurrency=settings.max_concurrency,
    )
    if show_env:  # as AppMeta.env: only for callers who manage the app
        out.env.update(settings.env)
    return out


def version_to_pb(
    version: Version, app: App | None = None, *, show_env: bool = False
) -> compute.AppVersionInfo:
    """A version; with its ``app``, its share of the traffic and its tags."""
    info = _version_to_pb(version)
    if version.settings is not None:
        info.settings.CopyFrom(version_settings_to_pb(version.settings, show_env=show_env))
    info.published_by = version.published_by
    info.message = version.message
    if app is not None and version.version:
        info.traffic_percent = app.share_of(version.version)
        info.tags.extend(sorted(t for t, v in app.tags.items() if v == version.version))
    return info


def _version_to_pb(version: Version) -> compute.AppVersionInfo:
    return compute.AppVersionInfo(
        version=version.version,
        status=int(version.status),  # type: ignore[arg-type]
        code_hash=version.code_hash,
        code_kind=int(version.code_kind),  # type: ignore[arg-type]
        runtime=runtime_to_pb(version.runtime),
        created_at_ms=version.created_at_ms,
        deployment_mode=int(version.deployment_mode),  # type: ignore[arg-type]
        error=version.error,
        artifact_digest=version.artifact_digest,
        code_size_bytes=version.code_size_bytes,
        image_ref=version.image_ref,
    )


# --- invocation -------------------------------------------------------------


def invocation_from_pb(http: common.HttpContext, body: bytes) -> InvocationRequest:
    method = _HTTP_METHODS.get(http.method)
    if method is None:
        raise InvalidArgument(
            f"unknown http.method {http.method}",
            reason="INVALID_ENUM",
            metadata={"field": "http.method"},
        )
    path = http.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return InvocationRequest(
        method=method,
        path=path,
        query=http.query.lstrip("?"),
        headers=dict(http.headers),
        body=body,
    )


def frame_to_pb(frame: ResponseFrame) -> compute.InvokeResponse:
    if isinstance(frame, ResponseHead):
        return compute.InvokeResponse(
            head=compute.InvokeHead(
                status_code=frame.status_code,
                response_headers=dict(frame.headers),
                execution_id=frame.execution_id,
                version=frame.version,
            )
        )
    if isinstance(frame, ResponseChunk):
        return compute.InvokeResponse(chunk=compute.InvokeChunk(data=frame.data))
    assert isinstance(frame, ResponseTrailer)
    return compute.InvokeResponse(
        trailer=compute.InvokeTrailer(
            total_body_bytes=frame.total_body_bytes,
            duration_ms=frame.duration_ms,
            trailers=dict(frame.trailers),
        )
    )


# --- executions and logs ------------------------------------------------------


def execution_to_pb(execution: Execution) -> common.Execution:
    m = execution.metrics
    return common.Execution(
        id=execution.id,
        app_id=execution.app_id,
        status=int(execution.status),  # type: ignore[arg-type]
        result=execution.result,
        error=execution.error,
        metrics=common.ExecutionMetrics(
            cold_start_ms=m.cold_start_ms,
            execution_ms=m.execution_ms,
            billed_duration_ms=m.billed_duration_ms,
            cpu_used_ms=m.cpu_used_ms,
            memory_used_mb=m.memory_used_mb,
            result_size_bytes=m.result_size_bytes,
        ),
        function_version=execution.function_version,
        error_class=execution.error_class,
        started_at_ms=execution.started_at_ms,
        completed_at_ms=execution.completed_at_ms,
        created_at_ms=execution.created_at_ms,
        attempts=execution.attempts,
        status_code=execution.status_code,
        idempotency_key=execution.idempotency_key,
    )


def log_entry_to_pb(entry: LogEntry) -> compute.LogEntry:
    return compute.LogEntry(
        timestamp_ms=entry.timestamp_ms,
        app_id=entry.app_id,
        version=entry.version,
        execution_id=entry.execution_id,
        stream=int(entry.stream),  # type: ignore[arg-type]
        message=entry.message,
    )
