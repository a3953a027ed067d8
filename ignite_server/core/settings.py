"""An app's settings: which fields callers may change, which of them pods
start with, and the resources that result from tier and explicit limits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from typing import Any

from ignite_server.core import defaults
from ignite_server.core.validation import normalize_settings
from ignite_server.domain.errors import InvalidArgument
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
#: Fields a published version carries (with scaling, which applies in place):
#: changing one on a published app makes a new version (docs/rollouts.md).
VERSION_FIELDS = frozenset({"env", "resource_tier", "limits", "max_concurrency"})
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


#: App fields a version's snapshot holds (domain/models.py VersionSettings).
VERSION_SETTINGS = frozenset({"tier", "limits", "scaling", "env", "max_concurrency"})


def check_mask(mask: Iterable[str]) -> list[str]:
    """An update mask naming at least one field, each one settable."""
    paths = list(mask)
    if not paths:
        raise InvalidArgument(
            "update_mask names no field to change",
            reason="EMPTY_UPDATE_MASK",
            metadata={"field": "update_mask"},
        )
    unknown = sorted(set(paths) - UPDATABLE_FIELDS)
    if unknown:
        raise InvalidArgument(
            f"update_mask names fields that cannot be changed: {', '.join(unknown)}",
            reason="FIELD_NOT_UPDATABLE",
            metadata={"field": "update_mask", "fields": ",".join(unknown)},
        )
    return paths


def changed_settings(current: App, changes: Mapping[str, Any], mask: list[str]) -> dict[str, Any]:
    """The checked new values (App field → value) of the fields in ``mask``
    (AppMeta names; ``changes`` maps them to the caller's values)."""
    settings = replace(
        settings_of(current), **{SETTING_OF_FIELD.get(f, f): changes[f] for f in mask}
    )
    settings = normalize_settings(settings)
    return {SETTING_OF_FIELD.get(f, f): getattr(settings, SETTING_OF_FIELD.get(f, f)) for f in mask}


def app_wide(update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` without what a version's snapshot holds."""
    return {k: v for k, v in update.items() if k not in VERSION_SETTINGS}
