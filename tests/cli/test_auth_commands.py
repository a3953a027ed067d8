"""``dodil auth org`` and ``dodil auth service-account`` against a platform
that requires authentication, driven the way an operator does it: the
platform administrator logs in with the credentials the server wrote,
creates an organization and its accounts, and each account then logs in
from a config directory of its own and can do exactly what its roles allow.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from ignite_launcher import LocalPlatform
from tests.cli.runner import Dodil, dodil_for, log_in
from tests.support import SEED_HANDLER, Sink, unique_name

#: Exit codes of the statuses these tests meet (docs/cli.md).
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNAUTHENTICATED = 6
EXIT_PERMISSION_DENIED = 7


@pytest.fixture(scope="module")
def secured(auth_platform: LocalPlatform) -> LocalPlatform:
    """The shared platform that refuses calls without a token; everything
    here goes over gRPC, as the CLI does."""
    return auth_platform


@pytest.fixture(scope="module")
def admin(secured: LocalPlatform, tmp_path_factory: pytest.TempPathFactory) -> Dodil:
    """dodil logged in as the platform administrator."""
    cli = dodil_for(secured.grpc_target, tmp_path_factory.mktemp("admin"))
    log_in(cli, *secured.admin_credentials())
    return cli


@pytest.fixture
def organization(admin: Dodil) -> str:
    """A fresh organization, created through the CLI."""
    name = unique_name("org")
    created = json.loads(admin("auth", "org", "create", name, "-o", "json").ok().stdout)
    assert created["name"] == name
    return name


@pytest.fixture
def user(secured: LocalPlatform, tmp_path: Path) -> Dodil:
    """dodil for someone other than the administrator, not logged in yet."""
    return dodil_for(secured.grpc_target, tmp_path / "user")


def _create_account(admin: Dodil, org: str, name: str, *roles: str) -> tuple[str, str]:
    """(client_id, secret) of a new account, from ``create -o json``."""
    flags = [arg for role in roles for arg in ("--role", role)]
    answer = admin("auth", "service-account", "create", name, "--org", org, *flags, "-o", "json")
    created = json.loads(answer.ok().stdout)
    assert created["service_account"]["client_id"] == f"{name}@{org}"
    assert created["client_secret"]
    return created["service_account"]["client_id"], created["client_secret"]


def _files_holding(root: Path, secret: str) -> dict[Path, int]:
    """Every file under ``root`` whose bytes contain ``secret``, with its mode."""
    return {
        path: stat.S_IMODE(path.stat().st_mode)
        for path in root.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    }


def test_admin_sets_up_an_organization_whose_accounts_act_by_role(
    admin: Dodil, organization: str, secured: LocalPlatform, tmp_path: Path
) -> None:
    org = organization
    # The administrator's own "organization" holds no apps, so logging in as
    # it must not make it the default for later commands.
    assert admin("ignite", "config", "get", "organization").ok().stdout.strip() == ""
    listed = json.loads(admin("auth", "org", "list", "-o", "json").ok().stdout)
    assert org in [o["name"] for o in listed]
    assert "system" not in [o["name"] for o in listed]

    dev_id, dev_secret = _create_account(admin, org, "deployer", "developer")
    # The readable form: the id and the secret on stdout, the advice on stderr.
    created = admin(
        "auth", "service-account", "create", "caller", "--org", org, "--role", "invoker"
    ).ok()
    lines = dict(line.split(":", 1) for line in created.stdout.splitlines())
    invoker_id, invoker_secret = lines["Client id"].strip(), lines["Client secret"].strip()
    assert invoker_id == f"caller@{org}"
    assert "not shown again" in created.stderr
    assert invoker_secret not in created.stderr

    developer = dodil_for(secured.grpc_target, tmp_path / "developer")
    invoker = dodil_for(secured.grpc_target, tmp_path / "invoker")
    log_in(developer, dev_id, dev_secret)
    log_in(invoker, invoker_id, invoker_secret)

    (developer.cwd / "handler.py").write_bytes(SEED_HANDLER)
    developer("ignite", "app", "deploy", "greet", "-c", "handler.py", "--runtime", "python").ok()
    answer = invoker("ignite", "invoke", "greet", "-p", '{"name": "Ines"}').ok()
    assert json.loads(answer.stdout)["greeting"] == "Hello, Ines!"

    refused = invoker("ignite", "app", "delete", "greet", "--yes")
    assert refused.code == EXIT_PERMISSION_DENIED
    assert refused.error_line().startswith("error: PERMISSION_DENIED")
    developer("ignite", "app", "get", "greet").ok()  # still there

    # Managing accounts and organizations is not a developer's business.
    for command in (["auth", "service-account", "list"], ["auth", "org", "create", "another"]):
        result = developer(*command)
        assert result.code == EXIT_PERMISSION_DENIED, command
        result.error_line()

    table = admin("auth", "service-account", "list", "--org", org).ok().stdout
    assert table.splitlines()[0].split()[:3] == ["NAME", "CLIENT", "ID"]
    assert "deployer" in table and "caller" in table
    accounts = json.loads(
        admin("auth", "service-account", "list", "--org", org, "-o", "json").ok().stdout
    )
    roles = {a["client_id"]: a["roles"] for a in accounts}
    assert roles == {dev_id: ["ROLE_DEVELOPER"], invoker_id: ["ROLE_INVOKER"]}
    for listing in (table, json.dumps(accounts)):
        assert dev_secret not in listing and invoker_secret not in listing

    # A secret is written only to its own account's credentials file, 0600;
    # the administrator who created it keeps no copy anywhere.
    assert _files_holding(admin.config_home, dev_secret) == {}
    assert _files_holding(admin.config_home, invoker_secret) == {}
    for cli, secret in ((developer, dev_secret), (invoker, invoker_secret)):
        holding = _files_holding(cli.config_home, secret)
        assert holding == {cli.config_home / "dodil" / "credentials.yaml": 0o600}
        other = invoker_secret if secret == dev_secret else dev_secret
        assert _files_holding(cli.config_home, other) == {}


def test_revoked_roles_and_deleted_accounts_stop_working(
    admin: Dodil, organization: str, user: Dodil
) -> None:
    org = organization
    client_id, secret = _create_account(admin, org, "ops", "developer", "invoker")
    log_in(user, client_id, secret)
    user("ignite", "app", "create", "first", "--runtime", "python").ok()

    revoked = admin(
        "auth", "service-account", "revoke-role", "ops", "developer", "--org", org, "-o", "json"
    ).ok()
    assert json.loads(revoked.stdout)["roles"] == ["ROLE_INVOKER"]
    # The token issued before the change is still the one in use: roles are
    # read from the live account, not from the token.
    refused = user("ignite", "app", "create", "second", "--runtime", "python")
    assert refused.code == EXIT_PERMISSION_DENIED
    assert refused.error_line().startswith("error: PERMISSION_DENIED")
    user("ignite", "app", "get", "first").ok()

    granted = admin(
        "auth", "service-account", "grant-role", f"ops@{org}", "viewer", "-o", "json"
    ).ok()
    assert json.loads(granted.stdout)["roles"] == ["ROLE_INVOKER", "ROLE_VIEWER"]

    admin("auth", "service-account", "delete", "ops", "--org", org, "--yes").ok()
    gone = user("ignite", "app", "get", "first")
    assert gone.code == EXIT_UNAUTHENTICATED
    assert gone.error_line().startswith("error: UNAUTHENTICATED")
    again = admin("auth", "service-account", "delete", "ops", "--org", org, "--yes")
    assert again.code == EXIT_NOT_FOUND
    again.error_line()
    listed = admin("auth", "service-account", "list", "--org", org, "-o", "json").ok()
    assert json.loads(listed.stdout) == []


def test_apps_open_to_anonymous_callers_are_invoked_without_a_token(
    admin: Dodil, organization: str, secured: LocalPlatform, tmp_path: Path
) -> None:
    org = organization
    developer = dodil_for(secured.grpc_target, tmp_path / "developer")
    log_in(developer, *_create_account(admin, org, "builder", "developer"))
    (developer.cwd / "handler.py").write_bytes(SEED_HANDLER)

    created = developer(
        "ignite", "app", "create", "open", "--runtime", "python",
        "--allow-unauthenticated", "-c", "handler.py", "-o", "json",
    ).ok()  # fmt: skip
    assert json.loads(created.stdout)["allow_unauthenticated"] is True
    developer("ignite", "draft", "publish", "open").ok()
    developer("ignite", "app", "deploy", "closed", "-c", "handler.py", "--runtime", "python").ok()
    # info.yaml sets it too.
    project = developer.cwd / "project"
    project.mkdir()
    (project / "handler.py").write_bytes(SEED_HANDLER)
    (project / "info.yaml").write_text(
        yaml.safe_dump({"name": "listed", "runtime": "python", "allow_unauthenticated": True})
    )
    deployed = developer("ignite", "app", "deploy", "-c", "project", "-o", "json").ok()
    assert json.loads(deployed.stdout)["app"]["allow_unauthenticated"] is True

    anonymous = dodil_for(secured.grpc_target, tmp_path / "anonymous")
    anonymous("ignite", "config", "set", "organization", org).ok()
    for app in ("open", "listed"):
        answer = anonymous("ignite", "invoke", app, "-p", '{"name": "Anon"}').ok()
        assert json.loads(answer.stdout)["greeting"] == "Hello, Anon!"
    # Only invoking is open: the app's settings still need a token.
    for command in (["invoke", "closed", "-p", "{}"], ["app", "get", "open"]):
        refused = anonymous("ignite", *command)
        assert refused.code == EXIT_UNAUTHENTICATED, command
        assert refused.error_line().startswith("error: UNAUTHENTICATED")

    # Closing an app again takes effect on the next call.
    closed = developer(
        "ignite", "app", "update", "listed", "--no-allow-unauthenticated", "-o", "json"
    )
    assert json.loads(closed.ok().stdout)["allow_unauthenticated"] is False
    refused = anonymous("ignite", "invoke", "listed", "-p", "{}")
    assert refused.code == EXIT_UNAUTHENTICATED
    refused.error_line()
    reopened = developer("ignite", "app", "update", "listed", "--allow-unauthenticated").ok()
    assert "Unauthenticated:" in reopened.stdout and "allowed" in reopened.stdout
    anonymous("ignite", "invoke", "listed", "-p", "{}").ok()


def test_the_administrator_cannot_use_an_organization_that_does_not_exist(admin: Dodil) -> None:
    nope = unique_name("nope")
    for argv in (
        ["ignite", "app", "create", "x", "--runtime", "python", "--org", nope],
        ["ignite", "app", "list", "--org", nope],
        ["ignite", "secret", "list", "--org", nope],
    ):
        refused = admin(*argv)
        assert refused.code == EXIT_NOT_FOUND, (argv, refused.stderr)
        assert "ORGANIZATION_NOT_FOUND" in refused.error_line()
    listed = json.loads(admin("auth", "org", "list", "-o", "json").ok().stdout)
    assert nope not in [o["name"] for o in listed]


def test_credentials_go_only_to_the_endpoint_they_were_issued_by(
    admin: Dodil, organization: str, secured: LocalPlatform, tmp_path: Path
) -> None:
    """`dodil login --endpoint E` keeps E with the credentials: later commands
    go to E without any configured endpoint (not to the default one, which
    could be another platform), and a command pointed elsewhere refuses to
    send them (a listener there receives nothing at all)."""
    client_id, secret = _create_account(admin, organization, "roamer", "developer")
    fresh = Dodil(config_home=tmp_path / "xdg", cwd=tmp_path)
    fresh(
        "login", "--endpoint", secured.grpc_target, "--client-id", client_id,
        "--client-secret", "-", input=secret + "\n",
    ).ok()  # fmt: skip
    stored = yaml.safe_load((tmp_path / "xdg" / "dodil" / "credentials.yaml").read_text())
    assert stored["endpoint"] == secured.grpc_target
    assert fresh("ignite", "config", "get", "api_endpoint").ok().stdout.strip() != (
        secured.grpc_target
    )
    fresh("ignite", "app", "create", "roams", "--runtime", "python").ok()
    whoami = json.loads(fresh("whoami", "-o", "json").ok().stdout)
    assert whoami["endpoint"] == secured.grpc_target
    assert whoami["credentials"]["endpoint"] == secured.grpc_target

    with Sink() as other:
        for how in (["--endpoint", other.address], []):
            if not how:
                fresh("ignite", "config", "set", "api_endpoint", other.address).ok()
            refused = fresh("ignite", "app", "get", "roams", *how)
            assert refused.code == EXIT_UNAUTHENTICATED, refused.stderr
            line = refused.error_line()
            assert secured.grpc_target in line and other.address in line
            assert secret not in refused.stderr
        assert other.connections == 0 and other.received == []
    fresh("ignite", "config", "unset", "api_endpoint").ok()
    fresh("ignite", "app", "get", "roams").ok()


def test_bad_names_and_roles_are_refused_before_anything_is_sent(dodil: Dodil) -> None:
    # An unreachable endpoint proves nothing was sent: a call would fail with
    # UNAVAILABLE's exit code, not with a usage error.
    dodil("ignite", "config", "set", "api_endpoint", "127.0.0.1:9").ok()
    cases = [
        ["auth", "service-account", "create", "Bad_Name", "--org", "acme"],
        ["auth", "service-account", "create", "ci"],  # no organization anywhere
        ["auth", "service-account", "create", "ci", "--role", "superuser", "--org", "acme"],
        ["auth", "service-account", "grant-role", "ci@acme", "root"],
        ["auth", "service-account", "delete", "ci@acme", "--org", "other", "--yes"],
        ["auth", "org", "create", "Not A Label"],
    ]
    for argv in cases:
        result = dodil(*argv)
        assert result.code == EXIT_USAGE, (argv, result.stderr)
        result.error_line()
