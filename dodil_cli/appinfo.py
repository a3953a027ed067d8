"""``info.yaml``: an app's settings kept beside its code.

``dodil ignite app deploy`` reads ``info.yaml`` from the code root when it is
there. Recognised keys::

    name: greet                      # the app's name (or org:name)
    description: Says hello          # also the MCP tool description
    runtime: python                  # python | go | rust | deno
    target: native                   # rust/go: native | wasm
    runtime_version: "3.11"          # interpreter version or toolchain
    tier: small                      # small | medium | large | xlarge
    mcp_enabled: true
    max_concurrency: 4
    allow_unauthenticated: false
    input_schema:                    # inline (YAML/JSON), JSON text, or a file
      type: object                   #   path relative to the code root
    output_schema: schema/out.json
    env:                             # a list of names: values are read from
      - API_KEY                      #   the deploying shell's environment, so
                                     #   secrets stay out of the file
    # env: {LOG_LEVEL: debug}        # or a mapping of names to values

Unknown keys are reported as a warning and ignored, so a file written for a
newer CLI still deploys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dodil_cli.appspec import RUNTIMES, TARGETS, TIERS, AppSpec
from dodil_cli.config import yaml_problem
from dodil_cli.errors import UsageError

INFO_FILE = "info.yaml"

_KNOWN = {
    "name",
    "description",
    "runtime",
    "target",
    "rust_target",
    "runtime_version",
    "tier",
    "mcp_enabled",
    "max_concurrency",
    "allow_unauthenticated",
    "input_schema",
    "output_schema",
    "env",
}


@dataclass(frozen=True)
class AppInfo:
    """What info.yaml says: the app's name (if any) and its settings."""

    name: str | None
    spec: AppSpec


def load_app_info(
    code_root: Path,
    environ: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> AppInfo | None:
    """Read ``code_root/info.yaml``; None when there is none."""
    path = code_root / INFO_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} must be a mapping of settings")
    for unknown in sorted(set(map(str, data)) - _KNOWN):
        if warn:
            warn(f"{INFO_FILE}: ignoring unknown key {unknown!r}")
    return parse_app_info(data, code_root, os.environ if environ is None else environ)


def parse_app_info(data: Mapping[str, Any], code_root: Path, environ: Mapping[str, str]) -> AppInfo:
    """Turn info.yaml's mapping into an AppInfo; raise UsageError on bad values."""
    runtime = _choice(data, "runtime", RUNTIMES)
    target = _choice(data, "target", TARGETS) or _choice(data, "rust_target", TARGETS)
    spec = AppSpec(
        runtime=runtime,
        target=target,
        runtime_version=_string(data, "runtime_version"),
        tier=_choice(data, "tier", TIERS),
        description=_string(data, "description"),
        mcp_enabled=_bool(data, "mcp_enabled"),
        max_concurrency=_int(data, "max_concurrency"),
        allow_unauthenticated=_bool(data, "allow_unauthenticated"),
        input_schema=_schema(data, "input_schema", code_root),
        output_schema=_schema(data, "output_schema", code_root),
        env=_env(data.get("env"), environ),
    )
    return AppInfo(_string(data, "name"), spec)


def _string(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise UsageError(f"{INFO_FILE}: {name} must be a string")
    return str(value)


def _choice(data: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _string(data, name)
    if value is not None and value.lower() not in allowed:
        raise UsageError(f"{INFO_FILE}: {name} must be one of {', '.join(allowed)}, not {value!r}")
    return value.lower() if value is not None else None


def _bool(data: Mapping[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise UsageError(f"{INFO_FILE}: {name} must be true or false")


def _int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{INFO_FILE}: {name} must be a non-negative integer")
    return value


def _schema(data: Mapping[str, Any], name: str, code_root: Path) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if not isinstance(value, str):
        raise UsageError(f"{INFO_FILE}: {name} must be a JSON Schema mapping, JSON text or a file")
    try:
        json.loads(value)
        return value
    except ValueError:
        pass
    path = code_root / value
    if not path.is_file():
        raise UsageError(f"{INFO_FILE}: {name} is neither JSON nor a file: {value!r}")
    return read_schema_file(path, f"{INFO_FILE}: {name}")


def read_schema_file(path: Path, what: str) -> str:
    """The text of a JSON Schema file, checked to be JSON (or YAML, converted)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {path}: {exc.strerror}") from None
    try:
        json.loads(text)
        return text
    except ValueError:
        pass
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UsageError(f"{what}: {path} is not a JSON (or YAML) schema object")
    return json.dumps(parsed, sort_keys=True)


def _env(value: Any, environ: Mapping[str, str]) -> dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): "" if v is None else _scalar(v) for k, v in value.items()}
    if isinstance(value, list):
        env = {}
        for name in map(str, value):
            if name not in environ:
                raise UsageError(
                    f"{INFO_FILE}: env {name} is listed but not set in this shell's environment"
                )
            env[name] = environ[name]
        return env
    raise UsageError(f"{INFO_FILE}: env must be a list of names or a mapping")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
