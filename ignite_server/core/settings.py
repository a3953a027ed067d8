"""An app's settings: which fields callers may change, which of them pods
start with, and the resources that result from tier and explicit limits."""

from __future__ import annotations

from dataclasses import fields

from ignite_server.core import defaults
from ignite_server.domain.models import App, AppSettings, Resources

#: AppMeta fields UpdateApp may change (the update_mask vocabulary).
UPDATABLE_FIELDS = frozenset(
    {
        "description", "env", "resource_tier", "limits", "scaling", "storage_mode",
        "ttl_seconds", "input_schema", "output_schema", "mcp_enabled", "max_concurrency",
        "allow_unauthenticated", "runtime",
    }
)  # fmt: skip
#: Fields a pod is started with: changing one drains the running pods.
POD_FIELDS = frozenset({"env", "resource_tier", "limits", "max_concurrency", "runtime"})
#: AppMeta field name → AppSettings attribute, where they differ.
SETTING_OF_FIELD = {"resource_tier": "tier"}


def resources_of(app: App) -> Resources:
    """Effective per-pod resources: the tier, overridden by explicit limits."""
    memory, cpu = defaults.TIERS[app.tier]
    return Resources(
        memory_mb=app.limits.memory_mb or memory,
        cpu_millicores=app.limits.cpu_millicores or cpu,
        timeout_secs=app.limits.timeout_secs or defaults.DEFAULT_TIMEOUT_SECS,
    )


def settings_of(app: App) -> AppSettings:
    """The caller-chosen part of a stored app."""
    return AppSettings(**{f.name: getattr(app, f.name) for f in fields(AppSettings)})
