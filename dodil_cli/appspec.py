"""The settings of an app as the user gives them, and their API messages.

Flags of ``app create``, ``app update`` and ``app deploy`` and the keys of an
``info.yaml`` all fill one :class:`AppSpec`. ``None`` means "not given", so a
spec can be layered (flags over info.yaml) and turned into exactly the fields
an UpdateApp call should change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from google.protobuf import field_mask_pb2

from dodil_cli.errors import UsageError
from dodil_cli.ids import AppRef

RUNTIMES = ("python", "go", "rust", "deno")
#: Runtimes whose draft must be compiled before it can be published.
COMPILED_RUNTIMES = frozenset({"rust", "go"})
TARGETS = ("native", "wasm")
TIERS = ("small", "medium", "large", "xlarge")
SCALE_METRICS = ("concurrency", "request-rate")
STORAGE_MODES = ("persistent", "ephemeral", "ttl")


@dataclass(frozen=True)
class AppSpec:
    """App settings; every field is optional (None = leave as is / default)."""

    runtime: str | None = None
    target: str | None = None
    runtime_version: str | None = None
    tier: str | None = None
    env: Mapping[str, str] | None = None
    unset_env: tuple[str, ...] = ()
    #: Variable names info.yaml declares, given a value or not.
    env_names: tuple[str, ...] = ()
    #: The env given is the app's whole env (``deploy``): a variable it no
    #: longer names is removed; a declared name with no value keeps the one
    #: the app has.
    replace_env: bool = False
    description: str | None = None
    input_schema: str | None = None
    output_schema: str | None = None
    mcp_enabled: bool | None = None
    max_concurrency: int | None = None
    memory_mb: int | None = None
    cpu_millicores: int | None = None
    timeout_secs: int | None = None
    max_replicas: int | None = None
    reserved_capacity: int | None = None
    scale_threshold: int | None = None
    scale_metric: str | None = None
    scaledown_period_secs: int | None = None
    storage_mode: str | None = None
    ttl_seconds: int | None = None
    allow_unauthenticated: bool | None = None

    def over(self, base: AppSpec) -> AppSpec:
        """This spec layered over ``base``: our given fields win; env maps merge."""
        merged: dict[str, Any] = {}
        for f in fields(self):
            mine = getattr(self, f.name)
            merged[f.name] = getattr(base, f.name) if mine is None else mine
        if self.env is not None and base.env is not None:
            merged["env"] = {**base.env, **self.env}
        merged["unset_env"] = tuple(base.unset_env) + tuple(self.unset_env)
        merged["env_names"] = tuple(base.env_names) + tuple(self.env_names)
        merged["replace_env"] = self.replace_env or base.replace_env
        return replace(self, **merged)


def parse_env(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``K=V`` strings as a dict; raise UsageError for a pair without ``=``."""
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"invalid --env {pair!r}: expected NAME=VALUE")
        env[name] = value
    return env


def runtime_message(
    name: str, target: str | None = None, version: str | None = None
) -> common.Runtime:
    """The Runtime oneof for a runtime name, target and version/toolchain."""
    if name not in RUNTIMES:
        raise UsageError(f"unknown runtime {name!r}: use one of {', '.join(RUNTIMES)}")
    if target and name not in ("rust", "go"):
        raise UsageError(f"a compile target applies to rust and go, not {name}")
    target_enum = {
        None: common.RUNTIME_TARGET_UNSPECIFIED,
        "native": common.RUNTIME_TARGET_NATIVE,
        "wasm": common.RUNTIME_TARGET_WASM,
    }[target]
    if name == "python":
        return common.Runtime(python=common.PythonRuntime(version=version or ""))
    if name == "deno":
        return common.Runtime(deno=common.DenoRuntime(version=version or ""))
    if name == "rust":
        return common.Runtime(rust=common.RustRuntime(target=target_enum, toolchain=version or ""))
    return common.Runtime(go=common.GoRuntime(target=target_enum, toolchain=version or ""))


def runtime_name(runtime: common.Runtime) -> str:
    """``python``, ``go``, ``rust``, ``deno`` or ``""`` for an unset Runtime."""
    return runtime.WhichOneof("runtime") or ""


def _tier(value: str) -> int:
    return int(common.ResourceTier.Value(f"RESOURCE_TIER_{value.upper()}"))


def _scale_metric(value: str) -> int:
    return int(common.ScaleMetric.Value(f"SCALE_METRIC_{value.upper().replace('-', '_')}"))


def _storage_mode(value: str) -> int:
    return int(common.StorageMode.Value(f"STORAGE_MODE_{value.upper()}"))


def _limits(
    spec: AppSpec, base: common.ResourceLimits | None = None
) -> common.ResourceLimits | None:
    given = {
        "memory_mb": spec.memory_mb,
        "cpu_millicores": spec.cpu_millicores,
        "timeout_secs": spec.timeout_secs,
    }
    if all(v is None for v in given.values()):
        return None
    limits = common.ResourceLimits()
    if base is not None:
        limits.CopyFrom(base)
    for name, value in given.items():
        # 0 takes an explicit limit away: the tier's value applies again.
        if value == 0:
            limits.ClearField(name)  # type: ignore[arg-type]
        elif value is not None:
            setattr(limits, name, value)
    return limits


def _scaling(
    spec: AppSpec, base: common.ScalingConfig | None = None
) -> common.ScalingConfig | None:
    given: dict[str, int | None] = {
        "max_replicas": spec.max_replicas,
        "reserved_capacity": spec.reserved_capacity,
        "scale_threshold": spec.scale_threshold,
        "scaledown_period_secs": spec.scaledown_period_secs,
        "scale_metric": _scale_metric(spec.scale_metric) if spec.scale_metric else None,
    }
    if all(v is None for v in given.values()):
        return None
    scaling = common.ScalingConfig()
    if base is not None:
        scaling.CopyFrom(base)
    for name, value in given.items():
        if value is not None:
            setattr(scaling, name, value)
    return scaling


def create_request(
    ref: AppRef, spec: AppSpec, *, image_app: bool = False
) -> compute.CreateAppRequest:
    """The CreateApp request for a new app with ``spec``'s settings (an
    image app needs no runtime)."""
    if not spec.runtime and not image_app:
        raise UsageError("a runtime is needed to create an app: pass --runtime python|go|rust|deno")
    request = compute.CreateAppRequest(
        organization_name=ref.organization,
        name=ref.name,
        runtime=runtime_message(spec.runtime, spec.target, spec.runtime_version)
        if spec.runtime
        else None,
        env={k: v for k, v in (spec.env or {}).items() if k not in spec.unset_env},
        description=spec.description or "",
        input_schema=spec.input_schema or "",
        output_schema=spec.output_schema or "",
        mcp_enabled=bool(spec.mcp_enabled),
        max_concurrency=spec.max_concurrency or 0,
        ttl_seconds=spec.ttl_seconds or 0,
        allow_unauthenticated=bool(spec.allow_unauthenticated),
    )
    if spec.tier:
        request.resource_tier = _tier(spec.tier)  # type: ignore[assignment]
    if spec.storage_mode:
        request.storage_mode = _storage_mode(spec.storage_mode)  # type: ignore[assignment]
    limits = _limits(spec)
    if limits is not None:
        request.limits.CopyFrom(limits)
    scaling = _scaling(spec)
    if scaling is not None:
        request.scaling.CopyFrom(scaling)
    return request


@dataclass
class Update:
    """The body and field mask of an UpdateApp call; empty when nothing changes."""

    app: common.AppMeta = field(default_factory=common.AppMeta)
    paths: list[str] = field(default_factory=list)

    def mask(self) -> field_mask_pb2.FieldMask:
        """The paths as a FieldMask."""
        return field_mask_pb2.FieldMask(paths=self.paths)


def update_for(spec: AppSpec, current: common.AppMeta) -> Update:
    """What to send so ``current`` takes ``spec``'s given settings.

    Fields equal to the current value are left out, so an unchanged deploy
    sends no UpdateApp at all. Limits, scaling and env are sent whole (the
    server replaces them whole), built from the current value plus changes.
    """
    update = Update()
    app = update.app

    def change(path: str, value: Any, now: Any) -> None:
        if value is None or value == now:
            return
        setattr(app, path, value)
        update.paths.append(path)

    if spec.runtime:
        runtime = runtime_message(spec.runtime, spec.target, spec.runtime_version)
        if runtime != current.runtime:
            app.runtime.CopyFrom(runtime)
            update.paths.append("runtime")
    change("description", spec.description, current.description)
    change("input_schema", spec.input_schema, current.input_schema)
    change("output_schema", spec.output_schema, current.output_schema)
    change("mcp_enabled", spec.mcp_enabled, current.mcp_enabled)
    change("max_concurrency", spec.max_concurrency, current.max_concurrency)
    change("ttl_seconds", spec.ttl_seconds, current.ttl_seconds)
    change("allow_unauthenticated", spec.allow_unauthenticated, current.allow_unauthenticated)
    change("resource_tier", _tier(spec.tier) if spec.tier else None, current.resource_tier)
    change(
        "storage_mode",
        _storage_mode(spec.storage_mode) if spec.storage_mode else None,
        current.storage_mode,
    )
    limits = _limits(spec, current.limits)
    if limits is not None and limits != current.limits:
        app.limits.CopyFrom(limits)
        update.paths.append("limits")
    scaling = _scaling(spec, current.scaling)
    if scaling is not None and scaling != current.scaling:
        app.scaling.CopyFrom(scaling)
        update.paths.append("scaling")
    if spec.env is not None or spec.unset_env:
        if spec.replace_env and spec.env is not None:
            kept = {name: current.env[name] for name in spec.env_names if name in current.env}
            env = {**kept, **spec.env}
        else:
            env = {**current.env, **(spec.env or {})}
        for name in spec.unset_env:
            env.pop(name, None)
        if env != dict(current.env):
            app.env.update(env)
            update.paths.append("env")
    return update
