"""Tokens from an external OpenID Connect issuer: a real issuer serving its
discovery document and key set on loopback, and a platform that trusts it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import grpc
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from dodil.ignite.v1 import ignite_identity_pb2_grpc as identity_grpc

from ignite_launcher import LocalPlatform, free_port, private_state_dir
from tests.support import BearerStub, error_info, unique_name


class Issuer:
    """A minimal OIDC issuer: discovery, a JWKS it can rotate, and counts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {
            "k1": ec.generate_private_key(ec.SECP256R1())
        }
        self.published = {"k1"}
        self.jwks_fetches = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": self.url, "jwks_uri": f"{self.url}/jwks"})

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        keys = []
        for kid in sorted(self.published):
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.keys[kid].public_key()))
            keys.append({**jwk, "kid": kid, "alg": "ES256", "use": "sig"})
        return web.json_response({"keys": keys})

    def token(self, org: str, roles: list[str], kid: str = "k1", **extra: object) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": "ignite",
            "sub": "user-1",
            "iat": now,
            "exp": now + 300,
            "org": org,
            "roles": roles,
            **extra,
        }
        key = self.keys.setdefault(kid, ec.generate_private_key(ec.SECP256R1()))
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    running = Issuer()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def trusting(issuer) -> Iterator[LocalPlatform]:
    with LocalPlatform(
        private_state_dir("ignite-oidc-"),
        gateway_port=None,
        auth=True,
        server_args=("--oidc-issuer", issuer.url, "--oidc-algorithms", "ES256"),
    ) as platform:
        yield platform


def _compute(platform: LocalPlatform, token: str) -> BearerStub:
    return BearerStub(platform.grpc_target, compute_grpc.ComputeServiceStub, token)


def _organization(platform: LocalPlatform) -> str:
    """A new organization, made by the platform administrator (an external
    token's organization claim must name one)."""
    anonymous = BearerStub(platform.grpc_target, identity_grpc.IdentityServiceStub, None)
    client_id, secret = platform.admin_credentials()
    token = anonymous.IssueToken(
        identity.IssueTokenRequest(client_id=client_id, client_secret=secret)
    ).access_token
    name = unique_name("org")
    BearerStub(platform.grpc_target, identity_grpc.IdentityServiceStub, token).CreateOrganization(
        identity.CreateOrganizationRequest(name=name)
    )
    return name


def test_external_tokens_carry_organization_and_roles(trusting, issuer):
    org = _organization(trusting)
    developer = _compute(trusting, issuer.token(org, ["developer"]))
    developer.CreateApp(compute.CreateAppRequest(organization_name=org, name="from-oidc"))
    me = BearerStub(
        trusting.grpc_target, identity_grpc.IdentityServiceStub, issuer.token(org, ["ROLE_VIEWER"])
    )
    who = me.WhoAmI(identity.WhoAmIRequest())
    assert (who.organization_name, list(who.roles), who.platform_admin) == (org, [4], False)
    viewer = _compute(trusting, issuer.token(org, ["viewer"]))
    assert viewer.GetApp(
        compute.GetAppRequest(organization_name=org, app_name="from-oidc")
    ).app.name
    with pytest.raises(grpc.RpcError) as denied:
        viewer.DeleteApp(compute.DeleteAppRequest(organization_name=org, app_name="from-oidc"))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Another organization's things do not exist for this caller.
    with pytest.raises(grpc.RpcError) as hidden:
        _compute(trusting, issuer.token("elsewhere", ["developer"])).GetApp(
            compute.GetAppRequest(organization_name=org, app_name="from-oidc")
        )
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    # An organization claim naming no organization of the platform.
    ghost = unique_name("ghost")
    with pytest.raises(grpc.RpcError) as unknown:
        _compute(trusting, issuer.token(ghost, ["developer"])).ListApps(
            compute.ListAppsRequest(organization_name=ghost)
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(unknown.value).reason == "ORGANIZATION_NOT_FOUND"


def test_bad_external_tokens_are_unauthenticated(trusting, issuer):
    org = unique_name("org")
    request = compute.ListAppsRequest(organization_name=org)
    for token in (
        issuer.token(org, ["developer"], aud="another-api"),
        issuer.token(org, ["developer"], exp=int(time.time()) - 600),
        issuer.token(org, ["developer"]).rsplit(".", 1)[0] + ".AAAA",
        jwt.encode(
            {"iss": issuer.url, "aud": "ignite", "sub": "x", "iat": 1, "exp": 9e9, "org": org},
            "guess",
            algorithm="HS256",
            headers={"kid": "k1"},
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            _compute(trusting, token).ListApps(request)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_new_keys_are_fetched_and_unknown_ones_at_most_once_per_interval(trusting, issuer):
    org = _organization(trusting)
    request = compute.ListAppsRequest(organization_name=org)
    # The issuer rotates to k2: the first token signed with it triggers a refetch.
    issuer.keys["k2"] = ec.generate_private_key(ec.SECP256R1())
    issuer.published.add("k2")
    before = issuer.jwks_fetches
    _compute(trusting, issuer.token(org, ["viewer"], kid="k2")).ListApps(request)
    assert issuer.jwks_fetches == before + 1
    # Made-up key ids: refused, and no further fetch within the interval.
    for n in range(5):
        with pytest.raises(grpc.RpcError) as caught:
            _compute(trusting, issuer.token(org, ["viewer"], kid=f"forged-{n}")).ListApps(request)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert issuer.jwks_fetches == before + 1
