"""The CLI's configuration file and its keys.

Settings live in ``$XDG_CONFIG_HOME/dodil/config.yaml`` (``~/.config`` when
the variable is unset), a flat YAML mapping. Each key can be overridden for one
run by an environment variable, and command-line flags override both:
flag > environment > file > built-in default.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from dodil_cli.endpoint import parse_endpoint
from dodil_cli.errors import CliError, UsageError
from dodil_cli.ids import check_organization

#: The endpoint of a platform started on this machine with its defaults.
DEFAULT_ENDPOINT = "localhost:50051"

OUTPUT_FORMATS = ("table", "json", "yaml")


def config_dir() -> Path:
    """The directory holding the config and credentials files."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    # The XDG spec says a relative value is invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "dodil"


def config_path() -> Path:
    """The path of config.yaml."""
    return config_dir() / "config.yaml"


def _check_endpoint(value: str) -> str:
    parse_endpoint(value)
    return value


def _check_output(value: str) -> str:
    if value not in OUTPUT_FORMATS:
        raise UsageError(f"invalid output format {value!r}: use one of {', '.join(OUTPUT_FORMATS)}")
    return value


def _check_bool(value: str) -> str:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return "true"
    if lowered in ("false", "no", "0", "off"):
        return "false"
    raise UsageError(f"invalid boolean {value!r}: use true or false")


@dataclass(frozen=True)
class ConfigKey:
    """One setting: its name, environment override, default and validator."""

    name: str
    env: str
    default: str
    help: str
    check: Callable[[str], str]


KEYS: Mapping[str, ConfigKey] = {
    key.name: key
    for key in (
        ConfigKey(
            "api_endpoint",
            "DODIL_API_ENDPOINT",
            DEFAULT_ENDPOINT,
            "gRPC endpoint of the Ignite API, host:port (TLS unless loopback or plaintext)",
            _check_endpoint,
        ),
        ConfigKey(
            "organization",
            "DODIL_ORGANIZATION",
            "",
            "default organization for ids written without 'org:'",
            check_organization,
        ),
        ConfigKey(
            "output",
            "DODIL_OUTPUT",
            "table",
            "default output format: table, json or yaml",
            _check_output,
        ),
        ConfigKey(
            "plaintext",
            "DODIL_PLAINTEXT",
            "false",
            "connect without TLS even to a non-loopback endpoint (true/false)",
            _check_bool,
        ),
    )
}


def key(name: str) -> ConfigKey:
    """Look up a config key by name, or raise UsageError naming the valid ones."""
    try:
        return KEYS[name]
    except KeyError:
        raise UsageError(f"unknown config key {name!r}: use one of {', '.join(KEYS)}") from None


class Config:
    """The values stored in config.yaml (only what the user set)."""

    def __init__(self, values: Mapping[str, str] | None = None, path: Path | None = None):
        self.values: dict[str, str] = dict(values or {})
        self.path = path or config_path()

    @classmethod
    def load(cls, path: Path | None = None) -> Config:
        """Read the file; a missing file is an empty config."""
        path = path or config_path()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls({}, path)
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise CliError(f"{path} is not valid YAML: {yaml_problem(exc)}") from None
        if not isinstance(data, dict):
            raise CliError(f"{path} must hold a mapping of settings")
        # Unknown keys are kept, not rejected, so a newer CLI's file still
        # loads in an older one.
        return cls({str(k): _scalar(v) for k, v in data.items() if v is not None}, path)

    def save(self) -> None:
        """Write the file atomically (a crash never leaves half a config)."""
        write_private_file(self.path, yaml.safe_dump(self.values, sort_keys=True))

    def set(self, name: str, value: str) -> str:
        """Validate and store a value; returns the stored (normalised) value."""
        checked = key(name).check(value)
        self.values[name] = checked
        return checked

    def unset(self, name: str) -> bool:
        """Remove a value; returns whether it was set."""
        key(name)
        return self.values.pop(name, None) is not None

    def effective(self, name: str) -> tuple[str, str]:
        """The value in force without flags, and where it came from.

        The source is ``env``, ``file`` or ``default``.
        """
        spec = key(name)
        from_env = os.environ.get(spec.env)
        if from_env:
            return from_env, "env"
        if name in self.values:
            return self.values[name], "file"
        return spec.default, "default"


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML parse error in one line: what is wrong and where."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        return f"{exc.problem}{where}"
    return " ".join(str(exc).split())


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_private_file(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, readable by its owner only.

    The temporary file is created 0600 before any byte is written, so a
    secret never sits in a file others can read, even for a moment.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
