"""How apps, versions, executions, log entries, organizations and service
accounts read in the default (table) format."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from google.protobuf.message import Message

from dodil_cli.appspec import runtime_name
from dodil_cli.output import Column, fields, table


def timestamp(ms: int) -> str:
    """Unix milliseconds as ``YYYY-MM-DD HH:MM:SSZ`` (UTC); ``-`` for 0."""
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def enum_name(enum: object, value: int, prefix: str) -> str:
    """An enum value's name without its prefix, lower-case: ``deployed``."""
    name: str = enum.Name(value)  # type: ignore[attr-defined]
    short = name.removeprefix(prefix).lower()
    return "-" if short == "unspecified" else short.replace("_", "-")


def runtime_text(runtime: common.Runtime) -> str:
    """``python 3.11``, ``rust (wasm)``, ``go``... or ``-``."""
    name = runtime_name(runtime)
    if not name:
        return "-"
    inner = getattr(runtime, name)
    version = getattr(inner, "version", "") or getattr(inner, "toolchain", "")
    text = f"{name} {version}".strip()
    target = getattr(inner, "target", 0)
    if target:
        text += f" ({enum_name(common.RuntimeTarget, target, 'RUNTIME_TARGET_')})"
    return text


#: How an image app's code kind reads where a runtime would.
IMAGE_KINDS: dict[int, str] = {
    common.CODE_KIND_UPLOAD_IMAGE: "image (Dockerfile)",
    common.CODE_KIND_GIT_IMAGE: "image (git)",
    common.CODE_KIND_PREBUILT: "image (prebuilt)",
}


def kind_text(runtime: common.Runtime, code_kind: int, deployment_mode: int) -> str:
    """What runs an app or version: its runtime, or the kind of image."""
    if code_kind in IMAGE_KINDS:
        return IMAGE_KINDS[code_kind]
    if deployment_mode == common.DEPLOYMENT_MODE_IMAGE:
        return "image"
    return runtime_text(runtime)


def size(n: int) -> str:
    """A byte count for people: ``812 B``, ``3.4 KB``, ``12.0 MB``."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def cli_id(wire_id: str) -> str:
    """``org/name`` as the CLI writes it: ``org:name``."""
    return wire_id.replace("/", ":", 1)


#: What stands for an env value that is not shown.
HIDDEN_VALUE = "<hidden>"


def hide_env_values(value: Any) -> Any:
    """``value`` with every app's env values replaced by :data:`HIDDEN_VALUE`:
    an AppMeta or a version's settings, any message holding one (a
    CreateApp, UpdateApp or PublishDraft response, a version), or lists and
    dicts of them. Messages are copied,
    never changed in place.

    Env values often are secrets (API keys, passwords), so every command
    shows them only on request (``--show-env``), as consoles show secret
    environment variables.
    """
    if isinstance(value, Message):
        copy = type(value)()
        copy.CopyFrom(value)
        _hide_in(copy)
        return copy
    if isinstance(value, Mapping):
        return {k: hide_env_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [hide_env_values(v) for v in value]
    return value


def _hide_in(message: Message) -> None:
    """Replace the env values of every AppMeta and version's settings
    inside ``message``, in place."""
    if isinstance(message, common.AppMeta | compute.VersionSettings):
        # The names are taken first: assigning to a protobuf map while
        # iterating over it skips entries.
        for name in list(message.env):
            message.env[name] = HIDDEN_VALUE
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        if field.is_repeated:
            for item in value:
                _hide_in(item)
        else:
            _hide_in(value)


def limits_text(limits: common.ResourceLimits) -> str:
    """``512 MB, 500m CPU, 30s timeout`` (the parts given)."""
    parts = [
        f"{limits.memory_mb} MB" if limits.HasField("memory_mb") else "",
        f"{limits.cpu_millicores}m CPU" if limits.HasField("cpu_millicores") else "",
        f"{limits.timeout_secs}s timeout" if limits.HasField("timeout_secs") else "",
    ]
    return ", ".join(p for p in parts if p)


def scaling_text(scaling: common.ScalingConfig) -> str:
    return (
        f"max {scaling.max_replicas or 10} pods, {scaling.reserved_capacity} warm, "
        f"scale down after {scaling.scaledown_period_secs or 300}s"
    )


def env_text(env: Mapping[str, str], show_env: bool) -> str:
    """Env as ``NAME=value`` lines, or names alone unless ``show_env``."""
    return "\n".join(f"{k}={v}" if show_env else k for k, v in sorted(env.items()))


def traffic_text(app: common.AppMeta) -> str:
    """``v3 90%, v4 10%``; ``v4 100%`` without a split; ``-`` before a publish."""
    if app.traffic:
        return ", ".join(f"v{t.version} {t.percent}%" for t in app.traffic)
    return f"v{app.active_version} 100%" if app.active_version else "-"


def tags_text(tags: Mapping[str, int]) -> str:
    return ", ".join(f"{tag} → v{version}" for tag, version in sorted(tags.items()))


def rollout_text(rollout: common.RolloutStatus) -> str:
    """A rollout in one line with its last decision, or ``""`` if none."""
    if not rollout.state:
        return ""
    state = enum_name(common.RolloutState, rollout.state, "ROLLOUT_STATE_")
    steps = " → ".join(f"{p}%" for p in rollout.policy.steps)
    head = f"v{rollout.from_version} → v{rollout.to_version} {state} ({steps}"
    head += f", {rollout.policy.step_secs}s a step)"
    return f"{head}\n{rollout.decision}" if rollout.decision else head


def app_detail(app: common.AppMeta, show_env: bool = False) -> str:
    """One app, as labelled lines; env values only with ``show_env``."""
    scaling = app.scaling
    pairs = [
        ("App", cli_id(app.id)),
        ("Runtime", kind_text(app.runtime, app.code_kind, app.deployment_mode)),
        *([("Image", app.image_ref)] if app.image_ref else []),
        ("State", enum_name(common.DeploymentState, app.deployment_state, "DEPLOYMENT_STATE_")),
        ("Active version", str(app.active_version) if app.active_version else "none"),
        ("Traffic", traffic_text(app)),
        ("Tags", tags_text(app.tags)),
        ("Rollout", rollout_text(app.rollout)),
        ("Public URLs", "\n".join(app.public_urls)),
        ("Tier", enum_name(common.ResourceTier, app.resource_tier, "RESOURCE_TIER_")),
        ("Limits", limits_text(app.limits)),
        ("Scaling", scaling_text(scaling)),
        ("Max concurrency", str(app.max_concurrency) if app.max_concurrency else "default"),
        ("Ready pods", str(app.ready_replicas)),
        ("Description", app.description),
        ("MCP", "enabled" if app.mcp_enabled else "disabled"),
        ("Unauthenticated", "allowed" if app.allow_unauthenticated else "no"),
        ("Env", env_text(app.env, show_env)),
        ("Created", timestamp(app.created_at_ms)),
        ("Updated", timestamp(app.updated_at_ms)),
    ]
    if app.status_message:
        pairs.append(("Status", app.status_message))
    return fields(pairs)


APP_COLUMNS = (
    Column("name", lambda a: a.name),
    Column("runtime", lambda a: kind_text(a.runtime, a.code_kind, a.deployment_mode)),
    Column(
        "state",
        lambda a: enum_name(common.DeploymentState, a.deployment_state, "DEPLOYMENT_STATE_"),
    ),
    Column("active", lambda a: str(a.active_version) if a.active_version else "-"),
    Column("tier", lambda a: enum_name(common.ResourceTier, a.resource_tier, "RESOURCE_TIER_")),
    Column("updated", lambda a: timestamp(a.updated_at_ms)),
)


def app_list(apps: Sequence[common.AppMeta]) -> str:
    """Apps as a table."""
    return table(apps, APP_COLUMNS) if apps else "No apps."


HOST_CONFLICT_COLUMNS = (
    Column("host label", lambda c: c.label),
    Column("app", lambda c: f"{c.organization_name}:{c.app_name}"),
    Column("found", lambda c: timestamp(c.found_at_ms)),
)


def host_conflict_list(conflicts: Sequence[compute.HostConflict]) -> str:
    """Disputed host labels and their apps, as a table."""
    if not conflicts:
        return "No host conflicts: every app URL names one app."
    return table(conflicts, HOST_CONFLICT_COLUMNS)


def version_detail(
    version: compute.AppVersionInfo, build_log: str = "", show_env: bool = False
) -> str:
    """One version (or the draft), as labelled lines, then its build log."""
    pairs = [
        ("Version", "draft" if version.version == 0 else str(version.version)),
        ("Status", enum_name(common.VersionStatus, version.status, "VERSION_STATUS_")),
        ("Runtime", kind_text(version.runtime, version.code_kind, version.deployment_mode)),
        ("Code hash", version.code_hash),
        ("Code size", size(version.code_size_bytes) if version.code_size_bytes else "-"),
        ("Artifact", version.artifact_digest),
        ("Created", timestamp(version.created_at_ms)),
    ]
    if version.version:
        settings = version.settings
        pairs += [
            ("Published by", version.published_by or "-"),
            ("Message", version.message),
            ("Traffic", f"{version.traffic_percent}%"),
            ("Tags", ", ".join(version.tags)),
            ("Tier", enum_name(common.ResourceTier, settings.resource_tier, "RESOURCE_TIER_")),
            ("Limits", limits_text(settings.limits)),
            ("Scaling", scaling_text(settings.scaling)),
            (
                "Max concurrency",
                str(settings.max_concurrency) if settings.max_concurrency else "default",
            ),
            ("Env", env_text(settings.env, show_env)),
        ]
    if version.error:
        pairs.append(("Error", version.error))
    text = fields(pairs)
    if build_log.strip():
        text += "\n\nBuild log:\n" + build_log.rstrip("\n")
    return text


VERSION_COLUMNS = (
    Column("version", lambda v: str(v.version)),
    Column("status", lambda v: enum_name(common.VersionStatus, v.status, "VERSION_STATUS_")),
    Column("traffic", lambda v: f"{v.traffic_percent}%" if v.traffic_percent else "-"),
    Column("tags", lambda v: ",".join(v.tags) or "-"),
    Column("runtime", lambda v: kind_text(v.runtime, v.code_kind, v.deployment_mode)),
    Column("code hash", lambda v: v.code_hash[:12]),
    Column(
        "tier",
        lambda v: enum_name(common.ResourceTier, v.settings.resource_tier, "RESOURCE_TIER_"),
    ),
    Column("env", lambda v: ",".join(sorted(v.settings.env)) or "-"),
    Column("published by", lambda v: v.published_by or "-"),
    Column("created", lambda v: timestamp(v.created_at_ms)),
    Column("message", lambda v: (v.message or v.error or "-")[:40]),
)


def version_list(versions: Sequence[compute.AppVersionInfo]) -> str:
    """Versions as a table."""
    return table(versions, VERSION_COLUMNS) if versions else "No published versions."


def execution_status(execution: common.Execution) -> str:
    """``completed``, ``failed``..."""
    return enum_name(common.ExecutionStatus, execution.status, "EXECUTION_STATUS_")


TERMINAL_STATUSES = frozenset(
    {
        common.EXECUTION_STATUS_COMPLETED,
        common.EXECUTION_STATUS_FAILED,
        common.EXECUTION_STATUS_TIMEOUT,
        common.EXECUTION_STATUS_CANCELLED,
    }
)


def result_text(result: bytes) -> str:
    """A result body for reading: JSON pretty-printed, text as is."""
    try:
        return json.dumps(json.loads(result), indent=2, ensure_ascii=False)
    except ValueError:
        return result.decode("utf-8", errors="replace")


def execution_detail(execution: common.Execution) -> str:
    """One execution, as labelled lines."""
    metrics = execution.metrics
    pairs = [
        ("Execution", execution.id),
        ("App", cli_id(execution.app_id)),
        ("Status", execution_status(execution)),
        ("Version", str(execution.function_version) if execution.function_version else "-"),
        ("HTTP status", str(execution.status_code) if execution.status_code else "-"),
        ("Attempts", str(execution.attempts)),
        ("Created", timestamp(execution.created_at_ms)),
        ("Started", timestamp(execution.started_at_ms)),
        ("Completed", timestamp(execution.completed_at_ms)),
        (
            "Duration",
            f"{metrics.execution_ms} ms (cold start {metrics.cold_start_ms} ms, "
            f"billed {metrics.billed_duration_ms} ms)",
        ),
    ]
    if execution.idempotency_key:
        pairs.append(("Idempotency key", execution.idempotency_key))
    if execution.error:
        pairs.append(("Error", f"{execution.error} ({execution.error_class or 'unknown'})"))
    if execution.result:
        pairs.append(("Result", result_text(execution.result)))
    return fields(pairs)


EXECUTION_COLUMNS = (
    Column("id", lambda e: e.id),
    Column("app", lambda e: cli_id(e.app_id)),
    Column("status", execution_status),
    Column("version", lambda e: str(e.function_version) if e.function_version else "-"),
    Column("duration", lambda e: f"{e.metrics.execution_ms} ms" if e.completed_at_ms else "-"),
    Column("created", lambda e: timestamp(e.created_at_ms)),
)


def execution_list(executions: Sequence[common.Execution]) -> str:
    """Executions as a table."""
    return table(executions, EXECUTION_COLUMNS) if executions else "No executions."


def log_line(entry: compute.LogEntry) -> str:
    """One log entry: time, stream, execution (short) and the message."""
    stream = enum_name(compute.LogStream, entry.stream, "LOG_STREAM_")
    execution = f" {entry.execution_id[-8:]}" if entry.execution_id else ""
    return f"{timestamp(entry.timestamp_ms)} [{stream}{execution}] {entry.message}"


def roles_text(roles: Sequence[int]) -> str:
    """Roles as the CLI spells them: ``developer, invoker``; ``-`` for none."""
    return ", ".join(enum_name(identity.Role, r, "ROLE_") for r in roles) or "-"


def account_detail(account: identity.ServiceAccount) -> str:
    """One service account, as labelled lines (it carries no secret)."""
    return fields(
        [
            ("Service account", account.name),
            ("Organization", account.organization_name),
            ("Client id", account.client_id),
            ("Roles", roles_text(account.roles)),
            ("Description", account.description),
            ("Created", timestamp(account.created_at_ms)),
        ]
    )


ACCOUNT_COLUMNS = (
    Column("name", lambda a: a.name),
    Column("client id", lambda a: a.client_id),
    Column("roles", lambda a: roles_text(a.roles)),
    Column("created", lambda a: timestamp(a.created_at_ms)),
    Column("description", lambda a: a.description),
)


def account_list(accounts: Sequence[identity.ServiceAccount]) -> str:
    """Service accounts as a table."""
    return table(accounts, ACCOUNT_COLUMNS) if accounts else "No service accounts."


ORGANIZATION_COLUMNS = (
    Column("name", lambda o: o.name),
    Column("display name", lambda o: o.display_name),
    Column("created", lambda o: timestamp(o.created_at_ms)),
)


def organization_list(organizations: Sequence[identity.Organization]) -> str:
    """Organizations as a table."""
    return table(organizations, ORGANIZATION_COLUMNS) if organizations else "No organizations."


def secret_list(secrets: Sequence[compute.SecretInfo]) -> str:
    if not secrets:
        return "No secrets."
    return table(secrets, SECRET_COLUMNS)


SECRET_COLUMNS = (
    Column("name", lambda s: s.name),
    Column("username", lambda s: s.username or "-"),
    Column("hosts", lambda s: ", ".join(s.hosts) or "(none: create it again with --host)"),
    Column("updated", lambda s: timestamp(s.updated_at_ms)),
)
