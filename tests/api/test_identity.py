"""Identity and tenancy over gRPC: tokens, organizations, roles, denial.

One platform with authentication on; the platform admin's credentials come
from the file its first start wrote, as an operator would use them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from dodil.ignite.v1 import ignite_identity_pb2_grpc as identity_grpc
from google.protobuf import message_factory

from ignite_launcher import LocalPlatform, private_state_dir
from ignite_server.api.authorization import POLICY, Access
from ignite_server.domain.principal import GRANTS, Permission, Role
from tests.support import SEED_HANDLER, BearerStub, error_info, python_source, unique_name

CANARY_ENV = "canary-env-" + uuid.uuid4().hex
SERVICES = (
    compute.DESCRIPTOR.services_by_name["ComputeService"],
    identity.DESCRIPTOR.services_by_name["IdentityService"],
)


class Tenant:
    """An organization with an app, an execution and accounts per role."""

    def __init__(self, platform: LocalPlatform, admin: BearerStub, name: str) -> None:
        self.name = name
        self.platform = platform
        admin.CreateOrganization(identity.CreateOrganizationRequest(name=name))
        self.secrets: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        for role in (Role.DEVELOPER, Role.INVOKER, Role.VIEWER, Role.ADMIN):
            account = admin.CreateServiceAccount(
                identity.CreateServiceAccountRequest(
                    organization_name=name, name=role.name.lower(), roles=[int(role)]
                )
            )
            self.secrets[role.name] = account.client_secret
            self.tokens[role.name] = issue(
                platform, account.service_account.client_id, account.client_secret
            )
        dev = self.compute(Role.DEVELOPER)
        dev.CreateApp(
            compute.CreateAppRequest(
                organization_name=name,
                name="greet",
                runtime={"python": {}},
                env={"SECRET": CANARY_ENV},
            )
        )
        dev.SaveDraft(
            compute.SaveDraftRequest(
                organization_name=name, app_name="greet", code=python_source(SEED_HANDLER)
            )
        )
        dev.PublishDraft(compute.PublishDraftRequest(organization_name=name, app_name="greet"))
        self.execution_id = dev.InvokeAsync(
            compute.InvokeAsyncRequest(organization_name=name, app_name="greet", body=b"{}")
        ).execution_id

    def compute(self, role: Role) -> BearerStub:
        return BearerStub(
            self.platform.grpc_target, compute_grpc.ComputeServiceStub, self.tokens[role.name]
        )

    def identity(self, role: Role) -> BearerStub:
        return BearerStub(
            self.platform.grpc_target, identity_grpc.IdentityServiceStub, self.tokens[role.name]
        )


def issue(platform: LocalPlatform, client_id: str, secret: str) -> str:
    stub = BearerStub(platform.grpc_target, identity_grpc.IdentityServiceStub, None)
    return stub.IssueToken(
        identity.IssueTokenRequest(client_id=client_id, client_secret=secret)
    ).access_token


@pytest.fixture(scope="module")
def secured(auth_platform: LocalPlatform) -> LocalPlatform:
    return auth_platform


@pytest.fixture(scope="module")
def admin(secured) -> BearerStub:
    client_id, secret = secured.admin_credentials()
    return BearerStub(
        secured.grpc_target, identity_grpc.IdentityServiceStub, issue(secured, client_id, secret)
    )


@pytest.fixture(scope="module")
def victim(secured, admin) -> Tenant:
    return Tenant(secured, admin, unique_name("victim"))


@pytest.fixture(scope="module")
def attacker(secured, admin) -> Tenant:
    return Tenant(secured, admin, unique_name("attacker"))


def _call(platform: LocalPlatform, method, request, token: str | None):
    """Call any method generically; return (code, reason)."""
    channel = grpc.insecure_channel(platform.grpc_target)
    path = f"/{method.containing_service.full_name}/{method.name}"
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    try:
        if method.server_streaming:
            call = channel.unary_stream(path, request_serializer=lambda m: m.SerializeToString())
            for _ in call(request, metadata=metadata, timeout=30):
                break
        else:
            call = channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString())
            call(request, metadata=metadata, timeout=30)
    except grpc.RpcError as err:
        info = error_info(err)
        return err.code(), info.reason if info else ""
    finally:
        channel.close()
    return grpc.StatusCode.OK, ""


def _request_for(method, tenant: Tenant):
    """A request aimed at ``tenant``'s things, built from the descriptor."""
    request = message_factory.GetMessageClass(method.input_type)()
    fields = method.input_type.fields_by_name
    for name, value in (
        ("organization_name", tenant.name),
        ("app_name", "greet"),
        ("execution_id", tenant.execution_id),
        ("name", "viewer"),
    ):
        if name in fields:
            setattr(request, name, value)
    return request


def _methods():
    for service in SERVICES:
        yield from service.methods


@pytest.mark.parametrize("method", list(_methods()), ids=lambda m: m.name)
def test_every_rpc_denies_foreign_and_invoke_only_tokens(secured, victim, attacker, method):
    path = f"/{method.containing_service.full_name}/{method.name}"
    assert path in POLICY, f"{path} has no access rule"
    access = POLICY[path].access
    request = _request_for(method, victim)

    code, reason = _call(secured, method, request, attacker.tokens["ADMIN"])
    if access in (Permission.__members__.values()) or access == Access.INVOKE:
        # Another tenant's things do not exist for this caller.
        assert code == grpc.StatusCode.NOT_FOUND, (code, reason)
        assert reason in ("APP_NOT_FOUND", "EXECUTION_NOT_FOUND", "ORGANIZATION_NOT_FOUND")
    elif access == Access.PLATFORM_ADMIN:
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "PLATFORM_ADMIN_REQUIRED")
    else:
        assert code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)

    # An invoke-only token in its own organization.
    code, reason = _call(secured, method, request, victim.tokens["INVOKER"])
    if access == Access.PUBLIC:
        # No role is needed (IssueToken answers on the credentials it is given).
        assert code != grpc.StatusCode.PERMISSION_DENIED
        return
    invoker = GRANTS[Role.INVOKER]
    permission = Permission.APPS_INVOKE if access == Access.INVOKE else access
    if access == Access.PLATFORM_ADMIN or (
        isinstance(permission, Permission) and permission not in invoker
    ):
        assert code == grpc.StatusCode.PERMISSION_DENIED, (code, reason)
    else:
        assert code not in (
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.NOT_FOUND,
        ), (code, reason)


def test_foreign_tenant_sees_nothing_in_listings(victim, attacker):
    apps = (
        attacker.compute(Role.ADMIN)
        .ListApps(compute.ListAppsRequest(organization_name=attacker.name))
        .apps
    )
    assert [a.id for a in apps] == [f"{attacker.name}/greet"]
    orgs = attacker.identity(Role.ADMIN).ListOrganizations(identity.ListOrganizationsRequest())
    assert [o.name for o in orgs.organizations] == [attacker.name]


def test_env_values_only_for_roles_that_manage(victim):
    request = compute.GetAppRequest(organization_name=victim.name, app_name="greet")
    assert dict(victim.compute(Role.DEVELOPER).GetApp(request).app.env) == {"SECRET": CANARY_ENV}
    assert dict(victim.compute(Role.INVOKER).GetApp(request).app.env) == {}
    assert dict(victim.compute(Role.VIEWER).GetApp(request).app.env) == {}


def test_version_settings_show_env_only_to_roles_that_manage(victim):
    request = compute.ListVersionsRequest(organization_name=victim.name, app_name="greet")
    [developer] = victim.compute(Role.DEVELOPER).ListVersions(request).versions
    assert dict(developer.settings.env) == {"SECRET": CANARY_ENV}
    assert developer.published_by  # the developer's account published it
    for role in (Role.INVOKER, Role.VIEWER):
        [seen] = victim.compute(role).ListVersions(request).versions
        assert dict(seen.settings.env) == {}
        assert seen.code_hash == developer.code_hash


def test_invoker_invokes_and_reads_but_cannot_manage(victim):
    invoker = victim.compute(Role.INVOKER)
    frames = list(
        invoker.Invoke(
            compute.InvokeRequest(
                organization_name=victim.name, app_name="greet", body=b'{"name":"Ada"}'
            )
        )
    )
    assert b"Hello, Ada!" in b"".join(f.chunk.data for f in frames)
    with pytest.raises(grpc.RpcError) as denied:
        invoker.DeleteApp(compute.DeleteAppRequest(organization_name=victim.name, app_name="greet"))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


def _forge(claims: dict, key, kid: str, alg: str = "EdDSA", typ: str = "at+jwt") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": typ})


def _signing_key(platform: LocalPlatform) -> tuple[str, object]:
    """The server's current key, read as an operator with database access."""
    import asyncio

    import asyncpg
    from cryptography.hazmat.primitives import serialization

    async def read():
        conn = await asyncpg.connect(
            f"postgresql://postgres@/ignite?host={platform.state_dir}/postgres/run"
        )
        try:
            return await conn.fetchrow(
                "SELECT kid, private_pem FROM signing_keys WHERE retired_at_ms IS NULL"
            )
        finally:
            await conn.close()

    row = asyncio.run(read())
    return row["kid"], serialization.load_pem_private_key(row["private_pem"].encode(), None)


def test_token_matrix_is_unauthenticated_without_touching_the_database():
    with LocalPlatform(
        private_state_dir("ignite-tokens-"), gateway_port=None, auth=True
    ) as platform:
        client_id, secret = platform.admin_credentials()
        good = issue(platform, client_id, secret)
        kid, key = _signing_key(platform)
        now = int(time.time())
        base = {
            "iss": "ignite",
            "aud": "ignite",
            "sub": client_id,
            "client_id": client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": "x",
        }
        forged = {
            "expired": _forge(
                {**base, "iat": now - 900, "nbf": now - 900, "exp": now - 300}, key, kid
            ),
            "not yet valid": _forge({**base, "nbf": now + 900}, key, kid),
            "wrong audience": _forge({**base, "aud": "someone-else"}, key, kid),
            "wrong issuer": _forge({**base, "iss": "https://evil.example"}, key, kid),
            "badly signed": _forge(base, Ed25519PrivateKey.generate(), kid),
            "unknown key": _forge(base, key, "no-such-kid"),
            "not an access token": _forge(base, key, kid, typ="JWT"),
            "alg none": jwt.encode(
                base, None, algorithm="none", headers={"kid": kid, "typ": "at+jwt"}
            ),
            "hmac confusion": jwt.encode(
                base,
                "a-guessed-shared-secret-32-bytes!",
                algorithm="HS256",
                headers={"kid": kid, "typ": "at+jwt"},
            ),
            "garbage": "not.a.jwt",
            "truncated": good[: len(good) // 2],
        }
        headers = {f"bearer {n}": f"Bearer {t}" for n, t in forged.items()}
        headers["basic scheme"] = "Basic YWRtaW46YWRtaW4="
        headers["empty bearer"] = "Bearer "
        # The database freezes (the server would restart one that died): any
        # database work would now hang until its deadline, so a quick
        # UNAUTHENTICATED proves none was attempted.
        frozen = _freeze_postgres(platform.state_dir / "postgres/data/postmaster.pid")
        try:
            channel = grpc.insecure_channel(platform.grpc_target)
            get_app = channel.unary_unary(
                "/dodil.ignite.v1.ComputeService/GetApp",
                request_serializer=lambda m: m.SerializeToString(),
            )
            request = compute.GetAppRequest(organization_name="acme-corp", app_name="greet")
            for case, header in headers.items():
                with pytest.raises(grpc.RpcError) as caught:
                    get_app(request, metadata=(("authorization", header),), timeout=5)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, case
                assert "Traceback" not in caught.value.details()
            with pytest.raises(grpc.RpcError) as missing:
                get_app(request, timeout=5)
            assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # The valid token passes authentication and only then meets the
            # frozen database.
            with pytest.raises(grpc.RpcError) as down:
                get_app(request, metadata=(("authorization", f"Bearer {good}"),), timeout=5)
            assert down.value.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
        finally:
            for pid in frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


def _freeze_postgres(pid_file: Path) -> list[int]:
    """SIGSTOP the postmaster named in ``pid_file`` (first, so it starts no
    new backend) and then its children; the pids stopped. A child that ends
    meanwhile (a backend finishing its session) is simply gone."""
    postmaster = int(pid_file.read_text().split()[0])
    os.kill(postmaster, signal.SIGSTOP)
    frozen = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGSTOP)
                    frozen.append(int(entry.name))
    return frozen


def test_tokens_survive_key_rotation_and_die_with_their_account(secured, admin):
    org = unique_name("rot")
    admin.CreateOrganization(identity.CreateOrganizationRequest(name=org))
    made = admin.CreateServiceAccount(
        identity.CreateServiceAccountRequest(
            organization_name=org, name="ci", roles=[int(Role.VIEWER)]
        )
    )
    token = issue(secured, made.service_account.client_id, made.client_secret)
    me = BearerStub(secured.grpc_target, identity_grpc.IdentityServiceStub, token)
    before = me.WhoAmI(identity.WhoAmIRequest())
    assert (before.subject, before.organization_name) == (f"ci@{org}", org)
    kid = admin.RotateSigningKey(identity.RotateSigningKeyRequest()).key_id
    assert kid in json.loads(admin.GetJwks(identity.GetJwksRequest()).jwks_json)["keys"][-1]["kid"]
    # Old tokens keep working; new ones are signed with the new key.
    assert me.WhoAmI(identity.WhoAmIRequest()).subject == f"ci@{org}"
    fresh = issue(secured, made.service_account.client_id, made.client_secret)
    assert jwt.get_unverified_header(fresh)["kid"] == kid
    # Revoking a role takes effect at once; deleting the account kills its tokens.
    admin.GrantRole(
        identity.GrantRoleRequest(organization_name=org, name="ci", role=int(Role.DEVELOPER))
    )
    dev = BearerStub(secured.grpc_target, compute_grpc.ComputeServiceStub, token)
    dev.CreateApp(compute.CreateAppRequest(organization_name=org, name="made-by-ci"))
    admin.RevokeRole(
        identity.RevokeRoleRequest(organization_name=org, name="ci", role=int(Role.DEVELOPER))
    )
    with pytest.raises(grpc.RpcError) as denied:
        dev.CreateApp(compute.CreateAppRequest(organization_name=org, name="second"))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    admin.DeleteServiceAccount(
        identity.DeleteServiceAccountRequest(organization_name=org, name="ci")
    )
    with pytest.raises(grpc.RpcError) as gone:
        me.WhoAmI(identity.WhoAmIRequest())
    assert gone.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as bad_secret:
        issue(secured, made.service_account.client_id, made.client_secret)
    assert bad_secret.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_anonymous_callers_invoke_public_apps_only(secured, victim):
    dev = victim.compute(Role.DEVELOPER)
    dev.CreateApp(
        compute.CreateAppRequest(
            organization_name=victim.name,
            name="public",
            runtime={"python": {}},
            allow_unauthenticated=True,
        )
    )
    dev.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=victim.name, app_name="public", code=python_source(SEED_HANDLER)
        )
    )
    dev.PublishDraft(compute.PublishDraftRequest(organization_name=victim.name, app_name="public"))
    anonymous = BearerStub(secured.grpc_target, compute_grpc.ComputeServiceStub, None)
    frames = list(
        anonymous.Invoke(
            compute.InvokeRequest(
                organization_name=victim.name, app_name="public", body=b'{"name":"World"}'
            )
        )
    )
    assert b"Hello, World!" in b"".join(f.chunk.data for f in frames)
    for call, request in (
        (anonymous.Invoke, compute.InvokeRequest(organization_name=victim.name, app_name="greet")),
        (anonymous.GetApp, compute.GetAppRequest(organization_name=victim.name, app_name="public")),
        (
            anonymous.DeleteApp,
            compute.DeleteAppRequest(organization_name=victim.name, app_name="public"),
        ),
        (
            anonymous.InvokeAsync,
            compute.InvokeAsyncRequest(organization_name=victim.name, app_name="public"),
        ),
    ):
        with pytest.raises(grpc.RpcError) as denied:
            result = call(request)
            if not hasattr(result, "ListFields"):
                list(result)
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_canary_secrets_never_reach_logs_or_errors(secured, victim, admin):
    # An env secret and a service-account secret, exercised through errors too.
    made = admin.CreateServiceAccount(
        identity.CreateServiceAccountRequest(
            organization_name=victim.name, name="canary", roles=[int(Role.INVOKER)]
        )
    )
    with pytest.raises(grpc.RpcError) as wrong:
        issue(secured, made.service_account.client_id, made.client_secret + "x")
    assert made.client_secret not in (wrong.value.details() or "")
    dev = victim.compute(Role.DEVELOPER)
    with pytest.raises(grpc.RpcError) as too_big:
        dev.UpdateApp(
            compute.UpdateAppRequest(
                organization_name=victim.name,
                app_name="greet",
                app={"env": {"SECRET": CANARY_ENV * 2000}},
                update_mask={"paths": ["env"]},
            )
        )
    assert CANARY_ENV not in (too_big.value.details() or "")
    time.sleep(0.5)
    logs = "".join(
        p.read_text(errors="replace") for p in (secured.state_dir / "logs").glob("*.log")
    )
    assert logs, "the server wrote no log at all"
    for secret in (CANARY_ENV, made.client_secret, *victim.secrets.values()):
        assert secret not in logs


def test_accounts_of_a_missing_organization_are_not_found(admin):
    with pytest.raises(grpc.RpcError) as caught:
        admin.ListServiceAccounts(
            identity.ListServiceAccountsRequest(organization_name=unique_name("ghost"))
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(caught.value).reason == "ORGANIZATION_NOT_FOUND"
