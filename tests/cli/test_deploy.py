"""``app deploy`` of a project directory with an info.yaml, against the real platform."""

from __future__ import annotations

import json

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
    assert app["env"] == {"GREETING_STYLE": "warm"}
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
    ).ok()
    redeployed = json.loads(again.stdout)
    assert redeployed["published_version"] == 2
    assert redeployed["app"]["description"] == "Now from a flag"
    assert redeployed["app"]["env"] == {"GREETING_STYLE": "warm", "EXTRA": "1"}
    assert "Updating" in again.stderr

    # Without --code the current directory is the project.
    inside = Dodil(config_home=ignite.config_home, cwd=project, env=ignite.env)
    assert f"Deployed {org}:hello version 3." in inside("ignite", "app", "deploy").ok().stdout

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
