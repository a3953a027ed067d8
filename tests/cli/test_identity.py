"""Logging in with a service account's client credentials, against a platform
that requires authentication: the token is issued, sent, renewed, and
refused when wrong."""

from __future__ import annotations

import json

import pytest
import yaml
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from dodil.ignite.v1 import ignite_identity_pb2_grpc as identity_grpc

from ignite_launcher import LocalPlatform
from tests.cli.runner import Dodil
from tests.support import SEED_HANDLER, BearerStub, unique_name


@pytest.fixture(scope="module")
def secured(auth_platform: LocalPlatform) -> LocalPlatform:
    """The shared platform with authentication required, with its HTTP edge
    for the OAuth 2.0 token endpoint."""
    return auth_platform


@pytest.fixture(scope="module")
def account(secured: LocalPlatform) -> tuple[str, str, str]:
    """(organization, client_id, client_secret) of a developer account."""
    anonymous = BearerStub(secured.grpc_target, identity_grpc.IdentityServiceStub, None)
    admin_id, admin_secret = secured.admin_credentials()
    admin_token = anonymous.IssueToken(
        identity.IssueTokenRequest(client_id=admin_id, client_secret=admin_secret)
    ).access_token
    admin = BearerStub(secured.grpc_target, identity_grpc.IdentityServiceStub, admin_token)
    org = unique_name("org")
    admin.CreateOrganization(identity.CreateOrganizationRequest(name=org))
    created = admin.CreateServiceAccount(
        identity.CreateServiceAccountRequest(
            organization_name=org, name="ci", roles=[identity.ROLE_DEVELOPER]
        )
    )
    return org, created.service_account.client_id, created.client_secret


@pytest.fixture
def cli(dodil: Dodil, secured: LocalPlatform) -> Dodil:
    dodil("ignite", "config", "set", "api_endpoint", secured.grpc_target).ok()
    return dodil


def test_client_credentials_login_deploy_invoke_and_renewal(cli, account):
    org, client_id, secret = account
    login = cli("login", "--client-id", client_id, "--client-secret", "-", input=secret + "\n")
    login.ok()
    # The account's organization became the default.
    assert cli("ignite", "config", "get", "organization").ok().stdout.strip() == org

    who = json.loads(cli("whoami", "-o", "json").ok().stdout)
    assert who["server"]["subject"] == client_id
    assert who["server"]["organization_name"] == org
    assert "ROLE_DEVELOPER" in who["server"]["roles"]
    assert secret not in json.dumps(who)

    (cli.cwd / "handler.py").write_bytes(SEED_HANDLER)
    cli("ignite", "app", "deploy", "greet", "-c", "handler.py", "--runtime", "python").ok()
    answer = json.loads(cli("ignite", "invoke", "greet", "-p", '{"name": "Kay"}').ok().stdout)
    assert answer["greeting"] == "Hello, Kay!"

    # A cached token at its expiry is exchanged again before the next call.
    path = cli.config_home / "dodil" / "credentials.yaml"
    stored = yaml.safe_load(path.read_text())
    stored.update(access_token="expired", expires_at_ms=1)
    path.write_text(yaml.safe_dump(stored))
    cli("ignite", "app", "get", "greet").ok()
    renewed = yaml.safe_load(path.read_text())
    assert renewed["access_token"] not in ("expired", "")
    assert renewed["expires_at_ms"] > 1


def test_wrong_secret_is_refused_at_login(cli, account):
    _, client_id, _ = account
    result = cli("login", "--client-id", client_id, "--client-secret", "not-the-secret")
    assert result.code == 6
    assert result.error_line().startswith("error: UNAUTHENTICATED")
    assert not (cli.config_home / "dodil" / "credentials.yaml").exists()


def test_calls_without_or_with_a_bad_token_are_refused(cli, account):
    org, _, _ = account
    anonymous = cli("ignite", "app", "list", "--org", org)
    assert anonymous.code == 6
    assert anonymous.error_line().startswith("error: UNAUTHENTICATED")
    cli.env["DODIL_TOKEN"] = "not-a-token"
    forged = cli("ignite", "app", "get", f"{org}:greet")
    assert forged.code == 6
    forged.error_line()


def test_login_at_an_oauth_token_endpoint(cli, account, secured):
    _, client_id, secret = account
    token_url = f"{secured.http_url}/v1/ignite/token"
    login = ["login", "--client-id", client_id, "--token-url", token_url]
    wrong = cli(*login, "--client-secret", "nope")
    assert wrong.code == 6
    assert wrong.error_line().startswith("error: UNAUTHENTICATED (invalid_client)")

    cli(*login, "--client-secret", secret).ok()
    who = json.loads(cli("whoami", "-o", "json").ok().stdout)
    assert who["credentials"]["token_url"] == token_url
    assert who["server"]["subject"] == client_id
    cli("ignite", "app", "list").ok()
