"""A live gateway (real sockets, in this process) in front of a live fake
gRPC server, shared by the gateway's own HTTP tests; and a real platform
with authentication on for the end-to-end ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
import requests
from aiohttp import web
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from dodil.ignite.v1 import ignite_identity_pb2_grpc as identity_grpc

from ignite_gateway.app import Gateway
from ignite_gateway.config import GatewayConfig
from ignite_launcher import LocalPlatform
from ignite_server.domain.principal import Role
from tests.gateway.fakes import FakeCompute, start_fake_server
from tests.support import SEED_HANDLER, BearerStub, python_source, unique_name

APPS_DOMAIN = "apps.test"


@dataclass
class LiveGateway:
    """Where the gateway listens, and the fake behind it."""

    url: str
    port: int
    fake: FakeCompute
    gateway: Gateway
    session: aiohttp.ClientSession

    def app_host(self, org: str, app: str) -> str:
        return f"{app}-{org}.{APPS_DOMAIN}"


@pytest_asyncio.fixture(scope="session")
async def live() -> AsyncIterator[LiveGateway]:
    server, fake, _, target = await start_fake_server()
    config = GatewayConfig(host="127.0.0.1", port=0, grpc_target=target, apps_domain=APPS_DOMAIN)
    gateway = Gateway(config)
    runner = web.AppRunner(gateway.application(), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        yield LiveGateway(f"http://127.0.0.1:{port}", port, fake, gateway, session)
    await runner.cleanup()
    await server.stop(None)


@pytest.fixture(scope="session")
def secured_platform(auth_platform: LocalPlatform) -> LocalPlatform:
    """The shared platform with authentication required (tests/conftest.py),
    where seed 000's fixed names ("acme-corp", "greet") are the gateway
    seed test's alone."""
    return auth_platform


def access_token(platform: LocalPlatform) -> str:
    """An access token from the OAuth 2.0 token endpoint (client credentials)."""
    client_id, client_secret = platform.admin_credentials()
    issued = requests.post(
        f"{platform.http_url}/v1/ignite/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        },
        timeout=30,
    )
    issued.raise_for_status()
    return str(issued.json()["access_token"])


def organization_with_apps(
    platform: LocalPlatform, apps: tuple[tuple[str, bool], ...]
) -> tuple[str, str]:
    """A new organization with a developer token and published apps
    (name, public): (organization, token)."""
    anonymous = BearerStub(platform.grpc_target, identity_grpc.IdentityServiceStub, None)
    client_id, secret = platform.admin_credentials()
    admin_token = anonymous.IssueToken(
        identity.IssueTokenRequest(client_id=client_id, client_secret=secret)
    ).access_token
    admin = BearerStub(platform.grpc_target, identity_grpc.IdentityServiceStub, admin_token)
    name = unique_name("org")
    admin.CreateOrganization(identity.CreateOrganizationRequest(name=name))
    made = admin.CreateServiceAccount(
        identity.CreateServiceAccountRequest(
            organization_name=name, name="dev", roles=[int(Role.DEVELOPER)]
        )
    )
    token = anonymous.IssueToken(
        identity.IssueTokenRequest(
            client_id=made.service_account.client_id, client_secret=made.client_secret
        )
    ).access_token
    dev = BearerStub(platform.grpc_target, compute_grpc.ComputeServiceStub, token)
    for app, public in apps:
        dev.CreateApp(
            compute.CreateAppRequest(
                organization_name=name,
                name=app,
                runtime={"python": {}},
                allow_unauthenticated=public,
            )
        )
        dev.SaveDraft(
            compute.SaveDraftRequest(
                organization_name=name, app_name=app, code=python_source(SEED_HANDLER)
            )
        )
        dev.PublishDraft(compute.PublishDraftRequest(organization_name=name, app_name=app))
    return name, token
