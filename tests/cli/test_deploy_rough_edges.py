"""What `app deploy` says and leaves when it fails or changes env, through
the installed ``dodil`` against the real platform: a failed build exits 12
on an app's first deploy as on later ones, the app it created is kept with
a line saying why; env given to deploy is the app's whole env; image apps
name what they run where a runtime would be."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.runner import Dodil
from tests.support import SEED_HANDLER

BROKEN_DENO = 'const n: number = "not a number";\n'


def _folder(root: Path, name: str, content: str) -> Path:
    root.mkdir()
    (root / name).write_text(content)
    return root


def test_a_failed_build_exits_12_on_the_first_deploy_and_later(ignite: Dodil, org: str) -> None:
    _folder(ignite.cwd / "bad", "main.ts", BROKEN_DENO)
    first = ignite("ignite", "app", "deploy", "fresh", "--code", "bad", "--runtime", "deno")
    assert first.code == 12, first.stderr
    assert "compile of" in first.error_line()
    # The app this deploy created is kept, and the deploy says so and why.
    assert f"{org}:fresh was created by this deploy and is kept" in first.stderr
    assert "build log stays readable" in first.stderr
    kept = json.loads(ignite("ignite", "app", "get", "fresh", "-o", "json").ok().stdout)
    assert kept["active_version"] == 0

    again = ignite("ignite", "app", "deploy", "fresh", "--code", "bad", "--runtime", "deno")
    assert again.code == 12, again.stderr
    assert "created by this deploy" not in again.stderr

    # A Python app's first deploy that fails to build: the same exit code.
    _folder(ignite.cwd / "py", "handler.py", "def handler(payload, ctx):\n    return (\n")
    python = ignite("ignite", "app", "deploy", "pyfresh", "--code", "py", "--runtime", "python")
    assert python.code == 12, python.stderr
    assert "created by this deploy and is kept" in python.stderr


def _env(ignite: Dodil, app: str) -> dict[str, str]:
    shown = ignite("ignite", "app", "get", app, "-o", "json", "--show-env").ok().stdout
    return dict(json.loads(shown)["env"])


def test_deploy_env_is_the_whole_env(ignite: Dodil, org: str) -> None:
    code = _folder(ignite.cwd / "src", "handler.py", SEED_HANDLER.decode())
    deploy = ("ignite", "app", "deploy", "envs", "--code", str(code), "--runtime", "python")
    ignite(*deploy, "--env", "KEEP=1", "--env", "DROP=2").ok()
    assert _env(ignite, "envs") == {"KEEP": "1", "DROP": "2"}

    # A redeploy that no longer gives DROP removes it (and is a change).
    dropped = ignite(*deploy, "--env", "KEEP=1").ok()
    assert "unchanged" not in dropped.stderr
    assert _env(ignite, "envs") == {"KEEP": "1"}
    # With no env given at all, the env stays as it is.
    same = ignite(*deploy).ok()
    assert "unchanged" in same.stderr
    assert _env(ignite, "envs") == {"KEEP": "1"}
    # --unset-env removes one by name.
    ignite(*deploy, "--unset-env", "KEEP").ok()
    assert _env(ignite, "envs") == {}

    # info.yaml's names: one with a value now is set; one without keeps the
    # value the app has; one no longer listed goes.
    ignite(*deploy, "--env", "SECRET=kept-value", "--env", "OLD=x").ok()
    (code / "info.yaml").write_text("env:\n  - SECRET\n  - LEVEL\n")
    ignite.env["LEVEL"] = "debug"
    ignite(*deploy).ok()
    assert _env(ignite, "envs") == {"SECRET": "kept-value", "LEVEL": "debug"}
