"""Apps written the way published Ignite apps are, deployed as their READMEs
say, against a platform that requires tokens (with its HTTP edge):

- the account set-up scripts run (``auth status``, ``service-account create
  -o json | jq -r .serviceAccountId``, ``grant-role ID SERVICE ROLE``,
  ``list-roles``);
- a multi-module Python app (``tests/cli/fixtures/support_desk``: handler.py
  routing on ``action``, ``lib/`` and ``actions/`` packages, requirements.txt,
  an info.yaml with ``input``/``output`` schemas, a 15-name ``env`` list and
  ``test_input``) and its Deno twin (``deno_desk``, a deno.json import map
  mapping ``ignite`` to the SDK), each deployed with one ``app deploy``
  command, invoked anonymously on its hyphenated app URL, with
  ``--test-input`` and ``--payload``, and listed as an MCP tool.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from dodil.ignite.v1 import ignite_identity_pb2_grpc as identity_grpc

from ignite_launcher import LocalPlatform
from tests.cli.runner import Dodil, dodil_for, log_in
from tests.gateway.test_mcp import mcp_client
from tests.support import BearerStub, unique_name

FIXTURES = Path(__file__).parent / "fixtures"

EXIT_USAGE = 2
EXIT_UNAUTHENTICATED = 6


@pytest.fixture(scope="module")
def secured(auth_platform: LocalPlatform) -> LocalPlatform:
    return auth_platform


@pytest.fixture(scope="module")
def admin(secured: LocalPlatform, tmp_path_factory: pytest.TempPathFactory) -> Dodil:
    cli = dodil_for(secured.grpc_target, tmp_path_factory.mktemp("admin"))
    log_in(cli, *secured.admin_credentials())
    return cli


@pytest.fixture(scope="module")
def organization(admin: Dodil) -> str:
    # A hyphen in the organization too: app URLs then split several ways.
    name = unique_name("acme-")
    admin("auth", "org", "create", name).ok()
    return name


def _step(cli: Dodil, script: str) -> str:
    done = cli.shell(script)
    assert done.returncode == 0, f"{script!r} failed: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def deployer(
    secured: LocalPlatform,
    admin: Dodil,
    organization: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Dodil, str, str]:
    """(dodil logged in as a developer of the organization, its id, its secret),
    set up the way an app's setup script does it."""
    org = organization
    created = json.loads(
        _step(admin, f"dodil auth service-account create deployer --org {org} -o json")
    )
    assert created["id"] == created["serviceAccountId"] == f"deployer@{org}"
    assert created["secret"] == created["client_secret"]
    account_id = _step(
        admin,
        f"dodil auth service-account create ci --org {org} -o json | jq -r .serviceAccountId",
    ).strip()
    assert account_id == f"ci@{org}"
    _step(
        admin,
        f"dodil auth service-account grant-role {created['id']} "
        "ignite-authorization-service ignite.developer",
    )
    cli = dodil_for(secured.grpc_target, tmp_path_factory.mktemp("deployer"))
    log_in(cli, created["id"], created["secret"])
    cli("ignite", "config", "set", "organization", org).ok()
    return cli, created["id"], created["secret"]


def test_auth_status_service_accounts_and_roles_as_setup_scripts_use_them(
    secured: LocalPlatform, admin: Dodil, organization: str, tmp_path: Path
) -> None:
    org = organization
    stranger = dodil_for(secured.grpc_target, tmp_path / "stranger")
    refused = stranger("auth", "status")
    assert refused.code == EXIT_UNAUTHENTICATED
    assert "not logged in" in refused.error_line()

    status = admin("auth", "status").ok().stdout
    assert "admin@system" in status and secured.grpc_target in status
    assert "Token expires" in status
    as_json = json.loads(admin("auth", "status", "-o", "json").ok().stdout)
    assert as_json["subject"] == "admin@system" and as_json["expires_at_ms"] > 0

    roles = admin("auth", "service-account", "list-roles").ok().stdout
    assert "ignite-authorization-service" in roles
    for role in ("ignite.admin", "ignite.developer", "ignite.invoker", "ignite.viewer"):
        assert role in roles
    listed_roles = json.loads(
        admin("auth", "service-account", "list-roles", "-o", "json").ok().stdout
    )
    assert {r["role"] for r in listed_roles} >= {"ignite.invoker"}

    script = f"""
        SA=$(dodil auth service-account create robot --org {org} -o json | jq -r .serviceAccountId)
        dodil auth service-account grant-role "$SA" \\
            ignite-authorization-service ignite.invoker -o json
    """
    granted = json.loads(_step(admin, script))
    assert granted["id"] == f"robot@{org}"
    assert granted["roles"] == ["ROLE_INVOKER"]
    # Today's two-argument form keeps working.
    admin("auth", "service-account", "grant-role", f"robot@{org}", "viewer").ok()

    bad_role = admin(
        "auth",
        "service-account",
        "grant-role",
        f"robot@{org}",
        "ignite-authorization-service",
        "ignite.superuser",
    )
    assert bad_role.code == EXIT_USAGE
    line = bad_role.error_line()
    assert "ignite.superuser" in line and "ignite.invoker" in line and "ignite.admin" in line
    bad_service = admin(
        "auth", "service-account", "grant-role", f"robot@{org}", "iam-service", "ignite.invoker"
    )
    assert bad_service.code == EXIT_USAGE
    assert "ignite-authorization-service" in bad_service.error_line()

    accounts = json.loads(
        admin("auth", "service-account", "list", "--org", org, "-o", "json").ok().stdout
    )
    robot = next(a for a in accounts if a["name"] == "robot")
    assert robot["id"] == f"robot@{org}"
    assert robot["roles"] == ["ROLE_INVOKER", "ROLE_VIEWER"]
    admin("auth", "service-account", "delete", robot["id"]).ok()
    accounts = json.loads(
        admin("auth", "service-account", "list", "--org", org, "-o", "json").ok().stdout
    )
    assert "robot" not in [a["name"] for a in accounts]


def _copy_fixture(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(FIXTURES / name, target)
    return target


def _info(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((project / "info.yaml").read_text())
    return data


def _issue(platform: LocalPlatform, client_id: str, secret: str) -> str:
    stub = BearerStub(platform.grpc_target, identity_grpc.IdentityServiceStub, None)
    return str(
        stub.IssueToken(
            identity.IssueTokenRequest(client_id=client_id, client_secret=secret)
        ).access_token
    )


def _anonymous_post(platform: LocalPlatform, org: str, app: str, body: Any) -> requests.Response:
    """POST to the app's own URL with no token (glibc does not resolve
    *.localhost, so the Host header goes to the gateway's address)."""
    return requests.post(
        platform.http_url + "/",
        headers={"Host": platform.app_host(org, app)},
        json=body,
        timeout=120,
    )


async def _tool(platform: LocalPlatform, token: str, name: str) -> Any:
    async with mcp_client(platform, token) as client:
        listing = await client.list_tools()
    tools = {tool.name: tool for tool in listing.tools}
    assert name in tools, sorted(tools)
    return tools[name]


def _deploy_as_the_readme_says(
    cli: Dodil, platform: LocalPlatform, org: str, app: str, project: Path, runtime: str
) -> None:
    line = (
        f"dodil ignite app deploy {app} --code {project} --runtime {runtime} --tier small "
        "--allow-unauthenticated --env A=1 --env B=2"
    )
    out = _step(cli, line)
    assert f"Deployed {org}:{app} version 1." in out
    assert f"URL: http://{platform.app_host(org, app)}" in out


@pytest.mark.timeout(600)
async def test_multi_module_python_app_deploys_as_its_readme_says(
    secured: LocalPlatform,
    organization: str,
    deployer: tuple[Dodil, str, str],
    tmp_path: Path,
) -> None:
    cli, account_id, secret = deployer
    org, app = organization, "support-desk"
    project = _copy_fixture("support_desk", tmp_path)
    info = _info(project)
    assert len(info["env"]) == 15
    # One listed name has its value in the deploying shell; the rest have none.
    cli.env["DESK_NAME"] = "Helpdesk"

    _deploy_as_the_readme_says(cli, secured, org, app, project, "python")

    meta = json.loads(cli("ignite", "app", "get", app, "--show-env", "-o", "json").ok().stdout)
    assert meta["env"] == {"A": "1", "B": "2", "DESK_NAME": "Helpdesk"}
    assert meta["allow_unauthenticated"] is True
    assert meta["resource_tier"] == "RESOURCE_TIER_SMALL"
    assert json.loads(meta["input_schema"]) == info["input"]
    assert json.loads(meta["output_schema"]) == info["output"]

    # Anonymous, on the app URL whose label splits several ways.
    answer = _anonymous_post(secured, org, app, info["test_input"])
    assert answer.status_code == 200, answer.text
    ticket = answer.json()
    assert ticket["ok"] is True and ticket["action"] == "create_ticket"
    assert ticket["data"]["desk"] == "Helpdesk"
    assert ticket["data"]["priority"] == "high"

    inside = Dodil(config_home=cli.config_home, cwd=project, env=cli.env)
    tested = json.loads(inside("ignite", "invoke", app, "--test-input").ok().stdout)
    assert tested["data"]["ticket"] == ticket["data"]["ticket"]

    status = json.loads(
        cli("ignite", "invoke", app, "--payload", '{"action": "status"}').ok().stdout
    )
    assert status["data"]["function_id"] == f"{org}/{app}"
    assert (status["data"]["a"], status["data"]["b"]) == ("1", "2")
    assert status["data"]["configured"] == ["A", "B", "DESK_NAME"]

    logs = cli("ignite", "app", "logs", app).ok().stdout
    assert logs.strip()

    tool = await _tool(
        secured, _issue(secured, account_id, secret), f"ignite_{org.replace('-', '_')}_support_desk"
    )
    assert tool.description == info["description"]
    assert tool.input_schema == info["input"]
    assert tool.output_schema == info["output"]

    # The same code and settings again: nothing new is published.
    again = cli.shell(
        f"dodil ignite app deploy {app} --code {project} --runtime python --tier small "
        "--allow-unauthenticated --env A=1 --env B=2"
    )
    assert again.returncode == 0, again.stderr
    assert "unchanged, version 1 stays active" in again.stderr
    versions = json.loads(cli("ignite", "version", "list", app, "-o", "json").ok().stdout)
    assert [v["version"] for v in versions] == [1]


@pytest.mark.timeout(600)
async def test_deno_app_with_an_import_map_deploys_as_its_readme_says(
    secured: LocalPlatform,
    organization: str,
    deployer: tuple[Dodil, str, str],
    tmp_path: Path,
) -> None:
    cli, account_id, secret = deployer
    org, app = organization, "deno-desk"
    project = _copy_fixture("deno_desk", tmp_path)
    info = _info(project)
    assert json.loads((project / "deno.json").read_text())["imports"]["ignite"]

    _deploy_as_the_readme_says(cli, secured, org, app, project, "deno")

    answer = _anonymous_post(secured, org, app, info["test_input"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["subject"] == "Printer on fire"

    inside = Dodil(config_home=cli.config_home, cwd=project, env=cli.env)
    tested = json.loads(inside("ignite", "invoke", app, "--test-input").ok().stdout)
    assert tested["ok"] is True and tested["action"] == "create_ticket"
    status = json.loads(
        cli("ignite", "invoke", app, "--payload", '{"action": "status"}').ok().stdout
    )
    assert (status["data"]["a"], status["data"]["b"]) == ("1", "2")

    tool = await _tool(
        secured, _issue(secured, account_id, secret), f"ignite_{org.replace('-', '_')}_deno_desk"
    )
    assert tool.input_schema == info["input"]
    assert tool.output_schema == info["output"]

    # --smoke invokes test_input after the publish and passes.
    smoke = cli.shell(f"dodil ignite app deploy {app} --code {project} --smoke --env A=3")
    assert smoke.returncode == 0, smoke.stderr
    assert "Smoke test passed" in smoke.stderr
