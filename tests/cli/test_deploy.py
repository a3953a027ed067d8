"""``app deploy`` of a project directory with an info.yaml, against the real platform."""

from __future__ import annotations

import json
import uuid

import yaml

from tests.cli.runner import Dodil
from tests.support import SEED_HANDLER

INFO_YAML = """\
name: hello
description: Greets whoever asks
runtime: python
mcp_enabled: true
input_schema:
  type: object
  properties:
    name: {type: string}
output_schema: schemas/out.json
env:
  - GREETING_STYLE
"""


def _project(root):
    root.mkdir()
    (root / "handler.py").write_bytes(SEED_HANDLER)
    (root / "info.yaml").write_text(INFO_YAML)
    (root / "schemas").mkdir()
    (root / "schemas" / "out.json").write_text('{"type": "object", "required": ["greeting"]}')
    (root / ".gitignore").write_text("scratch/\n")
    (root / "scratch").mkdir()
    (root / "scratch" / "big.bin").write_bytes(b"\0" * 100_000)
    return root


def test_deploy_directory_with_info_yaml_then_invoke(ignite, org):
    project = _project(ignite.cwd / "hello")
    ignite.env["GREETING_STYLE"] = "warm"

    deployed = json.loads(
        ignite("ignite", "app", "deploy", "--code", "hello", "-o", "json").ok().stdout
    )
    assert deployed["published_version"] == 1
    app = deployed["app"]
    assert app["id"] == f"{org}/hello"
    assert app["active_version"] == 1
    assert app["description"] == "Greets whoever asks"
    assert app["mcp_enabled"] is True
    assert app["env"] == {"GREETING_STYLE": "<hidden>"}
    shown = ignite("ignite", "app", "get", "hello", "-o", "json", "--show-env").ok().stdout
    assert json.loads(shown)["env"] == {"GREETING_STYLE": "warm"}
    assert json.loads(app["input_schema"])["properties"]["name"] == {"type": "string"}
    assert json.loads(app["output_schema"])["required"] == ["greeting"]
    assert "python" in app["runtime"]
    # The ignored 100 kB directory stayed home: the upload is a few kB.
    assert deployed["version"]["code_size_bytes"] < 10_000

    # Flags override info.yaml; an existing app is updated, not recreated.
    again = ignite(
        "ignite",
        "app",
        "deploy",
        "--code",
        str(project),
        "--description",
        "Now from a flag",
        "--env",
        "EXTRA=1",
        "-o",
        "json",
        "--show-env",
    ).ok()
    redeployed = json.loads(again.stdout)
    assert redeployed["published_version"] == 2
    assert redeployed["app"]["description"] == "Now from a flag"
    assert redeployed["app"]["env"] == {"GREETING_STYLE": "warm", "EXTRA": "1"}
    # The settings went with the publish: one version for code and settings.
    assert "with new description, env" in again.stderr

    # Without --code the current directory is the project. info.yaml's env
    # is the whole env, so EXTRA goes: the settings differ from version 2's
    # and make version 3 with them, info.yaml's description back too.
    inside = Dodil(config_home=ignite.config_home, cwd=project, env=ignite.env)
    third = inside("ignite", "app", "deploy").ok()
    assert f"Deployed {org}:hello version 3." in third.stdout
    assert "with new description, env" in third.stderr
    assert "Description:      Greets whoever asks" in third.stdout
    # The same deploy again: no version is made of code and settings that
    # did not change.
    fourth = inside("ignite", "app", "deploy").ok()
    assert f"Deployed {org}:hello version 3." in fourth.stdout
    assert "unchanged, version 3 stays active" in fourth.stderr

    versions = json.loads(ignite("ignite", "version", "list", "hello", "-o", "json").ok().stdout)
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[0]["status"] == "VERSION_STATUS_ACTIVE"

    invoked = ignite("ignite", "invoke", "hello", "-p", '{"name": "Grace"}', "-o", "json").ok()
    result = json.loads(invoked.stdout)
    assert result["status_code"] == 200
    assert result["result"]["greeting"] == "Hello, Grace!"
    assert result["result"]["execution_id"] == result["execution_id"]
    assert result["result"]["function_id"] == f"{org}/hello"


def test_deploy_of_a_new_app_needs_a_runtime(ignite):
    (ignite.cwd / "handler.py").write_bytes(SEED_HANDLER)
    result = ignite("ignite", "app", "deploy", "noruntime", "--code", "handler.py")
    assert result.code == 2
    assert "does not exist yet: give its runtime" in result.error_line()


def test_deploy_single_file_with_flags(ignite, org):
    (ignite.cwd / "handler.py").write_bytes(SEED_HANDLER)
    out = ignite(
        "ignite",
        "app",
        "deploy",
        "single",
        "-c",
        "handler.py",
        "--runtime",
        "python",
        "--tier",
        "medium",
    )
    out.ok()
    assert f"Deployed {org}:single version 1." in out.stdout
    app = json.loads(ignite("ignite", "app", "get", "single", "-o", "json").ok().stdout)
    assert app["resource_tier"] == "RESOURCE_TIER_MEDIUM"
    assert app["active_version"] == 1


def _handler_dir(root, source=SEED_HANDLER):
    root.mkdir()
    (root / "handler.py").write_bytes(source)
    (root / "info.yaml").write_text("runtime: python\ntest_input: {name: Smoke}\n")
    return root


def test_code_given_as_a_zip_or_tar_gz_file_is_sent_as_an_archive(ignite, org):
    import shutil

    project = _handler_dir(ignite.cwd / "src")
    for fmt, name in (("zip", "zipped"), ("gztar", "tarred")):
        archive = shutil.make_archive(str(ignite.cwd / name), fmt, root_dir=project)
        # The runtime comes from the info.yaml inside the archive.
        assert not (ignite.cwd / "info.yaml").exists()
        ignite("ignite", "app", "deploy", name, "--code", archive).ok()
        answer = json.loads(ignite("ignite", "invoke", name, "-p", '{"name": "Zip"}').ok().stdout)
        assert answer["greeting"] == "Hello, Zip!"
        # Sent as a source file, the archive's bytes would be refused
        # ("source code string cannot contain null bytes").


def test_a_failed_deploy_leaves_the_app_as_it_was(ignite, org):
    _handler_dir(ignite.cwd / "py")
    ignite("ignite", "app", "deploy", "steady", "--code", "py", "--runtime", "python").ok()
    deno = ignite.cwd / "deno"
    deno.mkdir()
    (deno / "main.ts").write_text('const n: number = "not a number";\n')
    failed = ignite(
        "ignite",
        "app",
        "deploy",
        "steady",
        "--code",
        "deno",
        "--runtime",
        "deno",
        "--tier",
        "large",
    )
    assert failed.code == 12, failed.stderr
    app = json.loads(ignite("ignite", "app", "get", "steady", "-o", "json").ok().stdout)
    assert "python" in app["runtime"] and "deno" not in app["runtime"]
    assert app["resource_tier"] != "RESOURCE_TIER_LARGE"
    assert app["active_version"] == 1
    answer = json.loads(ignite("ignite", "invoke", "steady", "-p", '{"name": "Still"}').ok().stdout)
    assert answer["greeting"] == "Hello, Still!"


def test_smoke_fails_the_deploy_when_the_app_errors(ignite, org):
    failing = b"def handler(payload, ctx):\n    raise RuntimeError('smoke and mirrors')\n"
    _handler_dir(ignite.cwd / "bad", failing)
    result = ignite("ignite", "app", "deploy", "smoky", "--code", "bad", "--smoke")
    assert result.code == 12
    assert "smoke test of" in result.error_line() and "HTTP 500" in result.error_line()
    _handler_dir(ignite.cwd / "good")
    passed = ignite("ignite", "app", "deploy", "smoky", "--code", "good", "--smoke").ok()
    assert "Smoke test passed" in passed.stderr
    tested = ignite("ignite", "invoke", "smoky", "--test-input", "--info", "good").ok()
    assert json.loads(tested.stdout)["greeting"] == "Hello, Smoke!"


def test_app_get_shows_env_names_and_hides_values_unless_asked(ignite, org):
    _handler_dir(ignite.cwd / "env")
    secret = "s3cr3t-value"
    ignite("ignite", "app", "deploy", "envy", "--code", "env", "--env", f"API_KEY={secret}").ok()
    shown = ignite("ignite", "app", "get", "envy").ok().stdout
    assert "API_KEY" in shown and secret not in shown
    as_json = json.loads(ignite("ignite", "app", "get", "envy", "-o", "json").ok().stdout)
    assert as_json["env"] == {"API_KEY": "<hidden>"}
    revealed = ignite("ignite", "app", "get", "envy", "--show-env").ok().stdout
    assert f"API_KEY={secret}" in revealed


def test_no_command_prints_env_values_unless_asked(ignite, org):
    """deploy, update, get, list and publish, in JSON and YAML: every value
    of every variable is hidden (a map changed while iterated over used to
    leave one showing); --show-env shows them all."""
    _handler_dir(ignite.cwd / "env")
    secrets = {f"KEY_{n}": f"canary-env-{uuid.uuid4().hex}" for n in range(8)}
    pairs = [arg for name, value in secrets.items() for arg in ("--env", f"{name}={value}")]
    outputs = {
        "deploy -o json": ignite(
            "ignite", "app", "deploy", "many", "--code", "env", *pairs, "-o", "json"
        ).ok().stdout,
        "update -o json": ignite(
            "ignite", "app", "update", "many", "--env", "EXTRA=canary-env-" + uuid.uuid4().hex,
            "-o", "json",
        ).ok().stdout,
        "get -o json": ignite("ignite", "app", "get", "many", "-o", "json").ok().stdout,
        "get -o yaml": ignite("ignite", "app", "get", "many", "-o", "yaml").ok().stdout,
        "list -o json": ignite("ignite", "app", "list", "-o", "json").ok().stdout,
        "publish -o yaml": ignite("ignite", "draft", "publish", "many", "-o", "yaml").ok().stdout,
        "get": ignite("ignite", "app", "get", "many").ok().stdout,
    }  # fmt: skip
    for command, text in outputs.items():
        assert "canary-env-" not in text, command
        if command != "get":
            assert text.count("<hidden>") >= len(secrets), command
    deployed = json.loads(outputs["deploy -o json"])
    assert deployed["app"]["env"] == dict.fromkeys(secrets, "<hidden>")
    assert set(yaml.safe_load(outputs["get -o yaml"])["env"].values()) == {"<hidden>"}
    shown = ignite("ignite", "app", "get", "many", "-o", "json", "--show-env").ok()
    shown = json.loads(shown.stdout)
    assert {k: shown["env"][k] for k in secrets} == secrets
    listed = json.loads(ignite("ignite", "app", "list", "-o", "json", "--show-env").ok().stdout)
    assert {k: listed[0]["env"][k] for k in secrets} == secrets


def test_explicit_limits_can_go_back_to_the_tier(ignite, org):
    _handler_dir(ignite.cwd / "lim")
    ignite(
        "ignite",
        "app",
        "deploy",
        "limited",
        "--code",
        "lim",
        "--memory-mb",
        "300",
        "--cpu-millicores",
        "400",
    ).ok()
    app = json.loads(ignite("ignite", "app", "get", "limited", "-o", "json").ok().stdout)
    assert app["limits"] == {"memory_mb": 300, "cpu_millicores": 400}
    updated = ignite(
        "ignite",
        "app",
        "update",
        "limited",
        "--memory-mb",
        "0",
        "--cpu-millicores",
        "0",
        "-o",
        "json",
    ).ok()
    assert json.loads(updated.stdout)["limits"] == {}
