"""What callers send, checked before anything is stored (core/validation.py):
every refusal is InvalidArgument with a stable reason and the field, and a
valid request comes back with the defaults of core/defaults.py filled in."""

from __future__ import annotations

import json

import pytest

from ignite_server.core import defaults, validation
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import (
    AppSettings,
    Limits,
    ResourceTier,
    RuntimeKind,
    RuntimeSpec,
    RuntimeTarget,
    ScaleMetric,
    ScalingInput,
    StorageMode,
)


def _refused(call, *args) -> InvalidArgument:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize("name", ["a", "acme", "acme-corp", "x1", "1x", "a" * 63, "a-b-c-9"])
def test_dns_labels_are_names(name: str) -> None:
    assert validation.check_name(name, "app_name") == name


@pytest.mark.parametrize(
    "name", ["Acme", "acme_corp", "-acme", "acme-", "a" * 64, "ac.me", "acmé", "a b", "a:b"]
)
def test_anything_else_is_not_a_name(name: str) -> None:
    refused = _refused(validation.check_name, name, "organization_name")
    assert refused.reason == "INVALID_NAME"
    assert refused.metadata == {"field": "organization_name"}


def test_an_empty_name_is_required_not_invalid() -> None:
    assert _refused(validation.check_name, "", "app_name").reason == "NAME_REQUIRED"


def test_a_new_apps_host_label_must_fit_63_characters() -> None:
    validation.check_new_app_name("o" * 30, "a" * 32)  # 30 + 1 + 32 = 63
    refused = _refused(validation.check_new_app_name, "o" * 30, "a" * 33)
    assert refused.reason == "NAME_TOO_LONG_FOR_URL" and refused.metadata["field"] == "name"


def test_settings_left_empty_get_the_defaults() -> None:
    stored = validation.normalize_settings(AppSettings())
    assert stored.tier == defaults.DEFAULT_TIER
    assert stored.storage_mode == StorageMode.PERSISTENT
    scaling = stored.scaling
    assert scaling.max_replicas == defaults.DEFAULT_MAX_REPLICAS
    assert scaling.scaledown_period_secs == defaults.DEFAULT_SCALEDOWN_PERIOD_SECS
    assert scaling.scale_metric == ScaleMetric.CONCURRENCY
    assert scaling.reserved_capacity == 0


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (AppSettings(limits=Limits(memory_mb=63)), "limits.memory_mb"),
        (AppSettings(limits=Limits(memory_mb=8193)), "limits.memory_mb"),
        (AppSettings(limits=Limits(cpu_millicores=49)), "limits.cpu_millicores"),
        (AppSettings(limits=Limits(timeout_secs=0)), "limits.timeout_secs"),
        (AppSettings(limits=Limits(timeout_secs=901)), "limits.timeout_secs"),
        (AppSettings(scaling=ScalingInput(max_replicas=101)), "scaling.max_replicas"),
        (
            AppSettings(scaling=ScalingInput(max_replicas=2, reserved_capacity=3)),
            "scaling.reserved_capacity",
        ),
        (AppSettings(scaling=ScalingInput(scale_threshold=10_001)), "scaling.scale_threshold"),
        (
            AppSettings(scaling=ScalingInput(scaledown_period_secs=86_401)),
            "scaling.scaledown_period_secs",
        ),
        (AppSettings(storage_mode=StorageMode.TTL, ttl_seconds=0), "ttl_seconds"),
        (AppSettings(max_concurrency=1001), "max_concurrency"),
        (AppSettings(max_concurrency=-1), "max_concurrency"),
    ],
)
def test_a_setting_out_of_its_range_names_the_field_and_the_range(
    settings: AppSettings, field: str
) -> None:
    refused = _refused(validation.normalize_settings, settings)
    assert refused.reason == "OUT_OF_RANGE" and refused.metadata == {"field": field}
    assert "must be between" in refused.message


@pytest.mark.parametrize(
    ("settings", "reason", "field"),
    [
        (AppSettings(tier=9), "INVALID_ENUM", "resource_tier"),  # type: ignore[arg-type]
        (AppSettings(storage_mode=7), "INVALID_ENUM", "storage_mode"),  # type: ignore[arg-type]
        (
            AppSettings(scaling=ScalingInput(scale_metric=5)),  # type: ignore[arg-type]
            "INVALID_ENUM",
            "scaling.scale_metric",
        ),
        (AppSettings(ttl_seconds=60), "TTL_WITHOUT_TTL_MODE", "ttl_seconds"),
        (AppSettings(description="d" * 4097), "DESCRIPTION_TOO_LONG", "description"),
        (AppSettings(mcp_enabled=True, input_schema="{}"), "MCP_NEEDS_DESCRIPTION", "description"),
        (AppSettings(mcp_enabled=True, description="x"), "MCP_NEEDS_INPUT_SCHEMA", "input_schema"),
        (
            AppSettings(runtime=RuntimeSpec(RuntimeKind.PYTHON, target=RuntimeTarget.WASM)),
            "INVALID_RUNTIME_TARGET",
            "runtime",
        ),
    ],
)
def test_settings_that_make_no_sense_are_refused(
    settings: AppSettings, reason: str, field: str
) -> None:
    refused = _refused(validation.normalize_settings, settings)
    assert (refused.reason, refused.metadata) == (reason, {"field": field})


def test_the_tiers_and_ttl_mode_are_kept() -> None:
    stored = validation.normalize_settings(
        AppSettings(tier=ResourceTier.LARGE, storage_mode=StorageMode.TTL, ttl_seconds=3600)
    )
    assert (stored.tier, stored.storage_mode, stored.ttl_seconds) == (
        ResourceTier.LARGE,
        StorageMode.TTL,
        3600,
    )


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"1BAD": "x"}, "INVALID_ENV_NAME"),
        ({"WITH-DASH": "x"}, "INVALID_ENV_NAME"),
        ({"": "x"}, "INVALID_ENV_NAME"),
        ({"PATH": "/evil"}, "RESERVED_ENV_NAME"),
        ({"LD_PRELOAD": "/evil.so"}, "RESERVED_ENV_NAME"),
        ({"PYTHONPATH": "/x"}, "RESERVED_ENV_NAME"),
        ({"IGNITE_SOCKET": "/x"}, "RESERVED_ENV_NAME"),
        ({"NUL": "a\x00b"}, "INVALID_ENV_VALUE"),
        ({f"V{i}": "" for i in range(129)}, "ENV_TOO_LARGE"),
        ({"BIG": "x" * (32 * 1024)}, "ENV_TOO_LARGE"),
    ],
)
def test_env_names_values_and_sizes_are_checked(env: dict[str, str], reason: str) -> None:
    refused = _refused(validation.normalize_settings, AppSettings(env=env))
    assert (refused.reason, refused.metadata) == (reason, {"field": "env"})


def test_an_env_error_never_repeats_a_value() -> None:
    secret = "canary-" + "s" * 40000
    refused = _refused(validation.normalize_settings, AppSettings(env={"TOKEN": secret}))
    assert "canary-" not in refused.message


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ("{not json", "INVALID_JSON_SCHEMA"),
        ("[1, 2]", "INVALID_JSON_SCHEMA"),
        ('{"type": 12}', "INVALID_JSON_SCHEMA"),
        ("[" * 30_000 + "]" * 30_000, "SCHEMA_TOO_DEEP"),
        (json.dumps({"description": "x" * (64 * 1024)}), "SCHEMA_TOO_LARGE"),
    ],
)
def test_schemas_must_be_valid_json_schemas_of_bounded_size(schema: str, reason: str) -> None:
    refused = _refused(validation.check_json_schema, schema, "input_schema")
    assert (refused.reason, refused.metadata) == (reason, {"field": "input_schema"})


def test_a_valid_schema_is_kept_as_written() -> None:
    schema = '{"type": "object", "properties": {"name": {"type": "string"}}}'
    assert validation.check_json_schema(schema, "input_schema") == schema
    assert validation.check_json_schema("", "output_schema") == ""


@pytest.mark.parametrize(("asked", "served"), [(0, 50), (1, 1), (500, 500), (501, 500)])
def test_page_sizes_default_and_are_capped(asked: int, served: int) -> None:
    assert validation.check_page_size(asked) == served


def test_a_negative_page_size_or_version_is_out_of_range() -> None:
    assert _refused(validation.check_page_size, -1).reason == "OUT_OF_RANGE"
    assert _refused(validation.check_version, -1).reason == "OUT_OF_RANGE"
    assert _refused(validation.check_version, 2**31).reason == "OUT_OF_RANGE"
    assert validation.check_version(2**31 - 1) == 2**31 - 1
