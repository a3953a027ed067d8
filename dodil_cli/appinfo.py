"""``info.yaml``: an app's settings kept beside its code.

``dodil ignite app deploy`` reads ``info.yaml`` from the code root when it is
there (for a ``.zip``/``.tar.gz`` archive, from the archive's root).
Recognised keys::

    name: greet                      # the app's name (or org:name)
    description: Says hello          # also the MCP tool description
    runtime: python                  # python | go | rust | deno
    target: native                   # rust/go: native | wasm
    runtime_version: "3.11"          # interpreter version or toolchain
    tier: small                      # small | medium | large | xlarge
    mcp_enabled: true
    max_concurrency: 4
    allow_unauthenticated: false
    input:                           # JSON Schema of the payload, as YAML
      type: object                   #   (input_schema: the same, or JSON
      properties:                    #   text, or a file relative to the
        name: {type: string}         #   code root)
    output: {type: object}           # JSON Schema of the result (or output_schema)
    env:                             # names of the variables the app reads:
      - API_KEY                      #   values come from --env K=V, else the
      - LOG_LEVEL                    #   deploying shell's environment; a name
                                     #   with neither is not set
    # env: {LOG_LEVEL: debug}        # or a mapping of names to values
    test_input: {name: Ada}          # a sample payload: invoke --test-input,
                                     #   deploy --smoke

Unknown keys are reported as a warning and ignored, so a file written for a
newer CLI still deploys. A bad value is one error naming the key and its line.
"""

from __future__ import annotations

import json
import os
import tarfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dodil_cli.appspec import RUNTIMES, TARGETS, TIERS, AppSpec
from dodil_cli.code import code_root, is_archive
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
    "input",
    "output",
    "input_schema",
    "output_schema",
    "env",
    "test_input",
}


class _Lines:
    """Where each top-level key of info.yaml is, for errors that name it."""

    def __init__(self, text: str = "") -> None:
        self._lines: dict[str, int] = {}
        try:
            node = yaml.compose(text) if text else None
        except yaml.YAMLError:
            node = None
        if isinstance(node, yaml.MappingNode):
            for key, _ in node.value:
                self._lines[str(key.value)] = key.start_mark.line + 1

    def where(self, name: str) -> str:
        """``info.yaml line 7`` for a key, ``info.yaml`` when unknown."""
        line = self._lines.get(name)
        return f"{INFO_FILE} line {line}" if line else INFO_FILE


_NO_LINES = _Lines()


@dataclass(frozen=True)
class AppInfo:
    """What info.yaml says: the app's name (if any) and its settings."""

    name: str | None
    spec: AppSpec
    #: The sample payload of ``test_input``, as the bytes to send.
    test_input: bytes | None = None


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
    return app_info_from_text(text, str(path), code_root, environ, warn)


def read_app_info(path: Path, warn: Callable[[str], None] | None = None) -> AppInfo | None:
    """info.yaml of a directory, beside a single file, or inside an archive."""
    if path.is_file():
        with path.open("rb") as head:
            if is_archive(head.read(4)):
                return load_archive_app_info(path, warn=warn)
    return load_app_info(code_root(path), warn=warn)


def load_archive_app_info(
    archive: Path,
    environ: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> AppInfo | None:
    """Read info.yaml at the root of a ``.zip`` / ``.tar.gz`` file; None without one.

    Schema files it names are looked for beside the archive.
    """
    text = _archive_member(archive, INFO_FILE)
    if text is None:
        return None
    return app_info_from_text(text, f"{archive}:{INFO_FILE}", archive.parent, environ, warn)


def _archive_member(archive: Path, name: str) -> str | None:
    wanted = {name, "./" + name}
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as packed:
                for member in packed.namelist():
                    if member in wanted:
                        return packed.read(member).decode("utf-8")
            return None
        with tarfile.open(archive, "r:*") as packed:
            for entry in packed:
                if entry.name in wanted and entry.isfile():
                    stream = packed.extractfile(entry)
                    return stream.read().decode("utf-8") if stream else None
    except (OSError, tarfile.TarError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {name} from {archive}: {exc}") from None
    return None


def app_info_from_text(
    text: str,
    where: str,
    code_root: Path,
    environ: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> AppInfo:
    """Parse info.yaml's text (``where`` names it in errors)."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{where} is not valid YAML: {yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where} must be a mapping of settings")
    lines = _Lines(text)
    for unknown in sorted(set(map(str, data)) - _KNOWN):
        if warn:
            warn(f"{lines.where(unknown)}: ignoring unknown key {unknown!r}")
    return parse_app_info(data, code_root, os.environ if environ is None else environ, lines)


def parse_app_info(
    data: Mapping[str, Any],
    code_root: Path,
    environ: Mapping[str, str],
    lines: _Lines = _NO_LINES,
) -> AppInfo:
    """Turn info.yaml's mapping into an AppInfo; raise UsageError on bad values."""
    try:
        return _parse(data, code_root, environ)
    except _BadValue as bad:
        raise UsageError(f"{lines.where(bad.key)}: {bad.message}") from None


class _BadValue(Exception):
    """A key's value is wrong; turned into a UsageError naming its line."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _parse(data: Mapping[str, Any], code_root: Path, environ: Mapping[str, str]) -> AppInfo:
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
        input_schema=_either_schema(data, "input", "input_schema", code_root),
        output_schema=_either_schema(data, "output", "output_schema", code_root),
        env=_env(data.get("env"), environ),
        env_names=_env_names(data.get("env")),
    )
    return AppInfo(_string(data, "name"), spec, _test_input(data.get("test_input")))


def _either_schema(data: Mapping[str, Any], short: str, long: str, code_root: Path) -> str | None:
    if data.get(short) is not None and data.get(long) is not None:
        raise _BadValue(short, f"give {short} or {long}, not both")
    if data.get(short) is not None:
        return _schema(data, short, code_root)
    return _schema(data, long, code_root)


def _test_input(value: Any) -> bytes | None:
    """The payload to send: mappings and lists as JSON, text as written."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):
        raise _BadValue(
            "test_input", "test_input must be JSON data (a mapping, list or text)"
        ) from None


def _string(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise _BadValue(name, f"{name} must be a string")
    return str(value)


def _choice(data: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _string(data, name)
    if value is not None and value.lower() not in allowed:
        raise _BadValue(name, f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value.lower() if value is not None else None


def _bool(data: Mapping[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise _BadValue(name, f"{name} must be true or false")


def _int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _BadValue(name, f"{name} must be a non-negative integer")
    return value


def _schema(data: Mapping[str, Any], name: str, code_root: Path) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if not isinstance(value, str):
        raise _BadValue(name, f"{name} must be a JSON Schema mapping, JSON text or a file")
    try:
        json.loads(value)
        return value
    except ValueError:
        pass
    path = code_root / value
    if not path.is_file():
        raise _BadValue(name, f"{name} is neither JSON nor a file: {value!r}")
    try:
        return read_schema_file(path, name)
    except UsageError as exc:
        raise _BadValue(name, exc.message) from None


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


def _env_names(value: Any) -> tuple[str, ...]:
    """The names ``env`` declares (checked by ``_env``)."""
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    if isinstance(value, dict):
        return tuple(str(name) for name in value)
    return ()


def _env(value: Any, environ: Mapping[str, str]) -> dict[str, str] | None:
    """A mapping as given; a list of names with the values this shell has.

    Names with no value here are left out: ``--env`` may still give them
    (flags are layered over info.yaml), and the rest are simply not set.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): "" if v is None else _scalar(v) for k, v in value.items()}
    if isinstance(value, list):
        env = {}
        for item in value:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name or "=" in name:
                raise _BadValue("env", f"env lists variable names; {item!r} is not one")
            if name in environ:
                env[name] = environ[name]
        return env
    raise _BadValue("env", "env must be a list of names or a mapping")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
