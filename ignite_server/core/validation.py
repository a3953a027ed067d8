"""Validation and normalisation of what callers send.

Every check raises InvalidArgument with a stable reason and the offending
field in the ErrorInfo metadata. Ranges live in core/defaults.py and are
documented in docs/limits.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import jsonschema

from ignite_server.core import defaults
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import (
    AppSettings,
    Limits,
    ResourceTier,
    RuntimeKind,
    RuntimeTarget,
    ScaleMetric,
    Scaling,
    ScalingInput,
    StorageMode,
)

#: A DNS label: it must fit a hostname (the app's direct URL) and a
#: Kubernetes object name.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST_LABEL_MAX = 63


def _invalid(field: str, message: str, reason: str) -> InvalidArgument:
    return InvalidArgument(message, reason=reason, metadata={"field": field})


def check_name(value: str, field: str) -> str:
    """An organization or app name: a DNS label."""
    if not value:
        raise _invalid(field, f"{field} is required", "NAME_REQUIRED")
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise _invalid(
            field,
            f"{field} {value[:80]!r} is not a DNS label: lower-case letters, digits and '-',"
            " 1-63 characters, starting and ending with a letter or digit",
            "INVALID_NAME",
        )
    return value


def is_name(value: str) -> bool:
    """Whether ``value`` is a DNS label, as names of organizations and apps are."""
    return 0 < len(value) <= 63 and _DNS_LABEL.fullmatch(value) is not None


def check_app_ref(organization: str, name: str) -> None:
    """Validate both parts of an app reference taken from a request."""
    check_name(organization, "organization_name")
    check_name(name, "app_name")


#: What separates a tag from the app's label in a tag URL
#: (``<tag>---<app>-<org>``): no new app or organization name holds it, so a
#: tag URL never reads as an app's own host (docs/rollouts.md).
TAG_URL_SEPARATOR = "---"


def check_host_name(value: str, field: str) -> str:
    """A name that becomes part of app hosts: a DNS label without "---"."""
    check_name(value, field)
    if TAG_URL_SEPARATOR in value:
        raise _invalid(
            field,
            f"{field} {value!r} contains '---', which app URLs keep for tags",
            "INVALID_NAME",
        )
    return value


#: The longest organization name: its apps' host labels are
#: ``<app>-<org>``, one DNS label, so at least a one-letter app and the dash
#: must fit beside it.
ORGANIZATION_NAME_MAX = _HOST_LABEL_MAX - 2


def check_new_organization_name(name: str, field: str = "name") -> str:
    """A new organization's name: a DNS label without "---" that leaves
    room in a host label for its apps' names."""
    check_host_name(name, field)
    if len(name) > ORGANIZATION_NAME_MAX:
        raise _invalid(
            field,
            f"{field} is {len(name)} characters; an organization's name is at most "
            f"{ORGANIZATION_NAME_MAX}, so that '<app>-{name[:20]}…' (its apps' host names) "
            "fits one DNS label",
            "NAME_TOO_LONG_FOR_URL",
        )
    return name


def check_new_app_name(organization: str, name: str) -> None:
    """Names of a new app: both DNS labels, and together they form the
    ``<app>-<org>`` label of the app's direct URL, which must fit 63 chars.
    The app's name may not hold "---" (tag URLs); the organization's was
    checked when it was made.

    CreateApp's request calls the app's name ``name``, so errors say so."""
    check_name(organization, "organization_name")
    check_host_name(name, "name")
    if len(name) + 1 + len(organization) > _HOST_LABEL_MAX:
        raise _invalid(
            "name",
            f"'{name}-{organization}' (the app's host name) is longer than 63 characters;"
            " choose a shorter app name",
            "NAME_TOO_LONG_FOR_URL",
        )


def _in_range(value: int, bounds: tuple[int, int], field: str) -> int:
    low, high = bounds
    if not low <= value <= high:
        raise _invalid(
            field, f"{field} must be between {low} and {high}, got {value}", "OUT_OF_RANGE"
        )
    return value


def _check_limits(limits: Limits) -> Limits:
    if limits.memory_mb is not None:
        _in_range(limits.memory_mb, defaults.MEMORY_MB_RANGE, "limits.memory_mb")
    if limits.cpu_millicores is not None:
        _in_range(limits.cpu_millicores, defaults.CPU_MILLICORES_RANGE, "limits.cpu_millicores")
    if limits.timeout_secs is not None:
        _in_range(limits.timeout_secs, defaults.TIMEOUT_SECS_RANGE, "limits.timeout_secs")
    return limits


def _check_scaling(given: ScalingInput | Scaling) -> Scaling:
    max_replicas = given.max_replicas or defaults.DEFAULT_MAX_REPLICAS
    _in_range(max_replicas, (1, defaults.MAX_REPLICAS_LIMIT), "scaling.max_replicas")
    _in_range(given.reserved_capacity, (0, max_replicas), "scaling.reserved_capacity")
    _in_range(given.scale_threshold, (0, defaults.SCALE_THRESHOLD_LIMIT), "scaling.scale_threshold")
    if given.scale_metric not in ScaleMetric.__members__.values():
        raise _invalid("scaling.scale_metric", "unknown scale_metric", "INVALID_ENUM")
    period = given.scaledown_period_secs or defaults.DEFAULT_SCALEDOWN_PERIOD_SECS
    _in_range(period, defaults.SCALEDOWN_PERIOD_RANGE, "scaling.scaledown_period_secs")
    return Scaling(
        max_replicas=max_replicas,
        reserved_capacity=given.reserved_capacity,
        scale_threshold=given.scale_threshold,
        scale_metric=ScaleMetric(given.scale_metric or ScaleMetric.CONCURRENCY),
        scaledown_period_secs=period,
    )


def _check_env(env: dict[str, str]) -> dict[str, str]:
    if len(env) > defaults.ENV_MAX_ENTRIES:
        raise _invalid("env", f"at most {defaults.ENV_MAX_ENTRIES} env variables", "ENV_TOO_LARGE")
    total = 0
    for key, value in env.items():
        if not _ENV_NAME.fullmatch(key):
            raise _invalid("env", f"env name {key[:80]!r} is not a valid name", "INVALID_ENV_NAME")
        if key in defaults.ENV_RESERVED_NAMES or key.startswith(defaults.ENV_RESERVED_PREFIXES):
            raise _invalid(
                "env", f"env name {key!r} is reserved by the platform", "RESERVED_ENV_NAME"
            )
        if "\x00" in value:
            raise _invalid("env", f"env {key!r} contains a NUL byte", "INVALID_ENV_VALUE")
        total += len(key.encode()) + len(value.encode())
    if total > defaults.ENV_MAX_TOTAL_BYTES:
        # The message never repeats values: env values are secrets.
        raise _invalid(
            "env",
            f"env names and values total {total} bytes; the limit is "
            f"{defaults.ENV_MAX_TOTAL_BYTES}",
            "ENV_TOO_LARGE",
        )
    return env


def check_json_schema(text: str, field: str) -> str:
    """A JSON Schema given as a string: valid JSON, and a valid schema."""
    if not text:
        return text
    if len(text.encode()) > defaults.SCHEMA_MAX_BYTES:
        raise _invalid(
            field, f"{field} is larger than {defaults.SCHEMA_MAX_BYTES} bytes", "SCHEMA_TOO_LARGE"
        )
    # Both the decoder and the schema checker recurse once (or more) per
    # level: a schema nested past the interpreter's recursion limit is bad
    # input, not a crash.
    too_deep = _invalid(field, f"{field} nests too deep", "SCHEMA_TOO_DEEP")
    try:
        schema: Any = json.loads(text)
    except RecursionError:
        raise too_deep from None
    except ValueError as err:
        raise _invalid(field, f"{field} is not valid JSON: {err}", "INVALID_JSON_SCHEMA") from None
    if not isinstance(schema, dict | bool):
        raise _invalid(field, f"{field} must be a JSON object", "INVALID_JSON_SCHEMA")
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator.check_schema(schema)
    except RecursionError:
        raise too_deep from None
    except jsonschema.SchemaError as err:
        raise _invalid(
            field, f"{field} is not a valid JSON Schema: {err.message}", "INVALID_JSON_SCHEMA"
        ) from None
    return text


def check_runtime_target(settings: AppSettings) -> None:
    runtime = settings.runtime
    if runtime is None:
        return
    if runtime.target == RuntimeTarget.WASM and runtime.kind not in (
        RuntimeKind.RUST,
        RuntimeKind.GO,
    ):
        raise _invalid("runtime", f"{runtime.kind} has no WASM target", "INVALID_RUNTIME_TARGET")


def normalize_settings(settings: AppSettings) -> AppSettings:
    """Check every setting and fill in defaults; return the stored form."""
    if settings.tier not in ResourceTier.__members__.values():
        raise _invalid("resource_tier", "unknown resource_tier", "INVALID_ENUM")
    if settings.storage_mode not in StorageMode.__members__.values():
        raise _invalid("storage_mode", "unknown storage_mode", "INVALID_ENUM")
    storage = StorageMode(settings.storage_mode or StorageMode.PERSISTENT)
    if storage == StorageMode.TTL:
        _in_range(settings.ttl_seconds, defaults.TTL_SECONDS_RANGE, "ttl_seconds")
    elif settings.ttl_seconds:
        raise _invalid(
            "ttl_seconds", "ttl_seconds needs storage_mode STORAGE_MODE_TTL", "TTL_WITHOUT_TTL_MODE"
        )
    if len(settings.description) > defaults.DESCRIPTION_MAX_CHARS:
        raise _invalid(
            "description",
            f"description is longer than {defaults.DESCRIPTION_MAX_CHARS} characters",
            "DESCRIPTION_TOO_LONG",
        )
    _in_range(settings.max_concurrency, (0, defaults.MAX_CONCURRENCY_LIMIT), "max_concurrency")
    check_runtime_target(settings)
    input_schema = check_json_schema(settings.input_schema, "input_schema")
    check_json_schema(settings.output_schema, "output_schema")
    if settings.mcp_enabled:
        for field, value in (("description", settings.description), ("input_schema", input_schema)):
            if not value.strip():
                raise _invalid(field, f"mcp_enabled needs a {field}", "MCP_NEEDS_" + field.upper())
    return replace(
        settings,
        tier=ResourceTier(settings.tier or defaults.DEFAULT_TIER),
        limits=_check_limits(settings.limits),
        scaling=_check_scaling(settings.scaling),
        env=_check_env(dict(settings.env)),
        storage_mode=storage,
    )


def check_page_size(page_size: int) -> int:
    if page_size < 0:
        raise _invalid("page_size", "page_size must not be negative", "OUT_OF_RANGE")
    return min(page_size or defaults.PAGE_SIZE_DEFAULT, defaults.PAGE_SIZE_MAX)


#: Version numbers are uint32 on the wire and int4 in the store.
_MAX_VERSION = 2**31 - 1


def check_version(version: int, field: str = "version") -> int:
    if not 0 <= version <= _MAX_VERSION:
        raise _invalid(field, f"{field} must be between 0 and {_MAX_VERSION}", "OUT_OF_RANGE")
    return version
