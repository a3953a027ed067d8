"""Apps as MCP tools, end to end: the real platform (PostgreSQL, server,
gateway, Python pods) with authentication on, driven by the MCP Python SDK's
own Streamable HTTP client, as an agent would.

Organizations carry a hyphen in their name so the tool-name mapping
(``-`` → ``_``) is exercised everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx2
import pytest
import requests
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from dodil.ignite.v1 import ignite_identity_pb2_grpc as identity_grpc
from google.protobuf import field_mask_pb2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from ignite_launcher import LocalPlatform, private_state_dir
from ignite_server.domain.principal import Role
from tests.support import SEED_HANDLER, BearerStub, error_info, python_source, unique_name

GREET_SCHEMA = '{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}'

ADD_HANDLER = b"""import json

def handler(payload, ctx):
    args = json.loads(payload)
    return {"sum": args["a"] + args["b"]}
"""
ADD_INPUT = json.dumps(
    {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    }
)
ADD_OUTPUT = json.dumps(
    {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]}
)

FAILING_HANDLER = b"""def handler(payload, ctx):
    raise ValueError("the flux capacitor is empty")
"""


def issue(platform: LocalPlatform, client_id: str, secret: str) -> str:
    stub = BearerStub(platform.grpc_target, identity_grpc.IdentityServiceStub, None)
    return stub.IssueToken(
        identity.IssueTokenRequest(client_id=client_id, client_secret=secret)
    ).access_token


class Org:
    """An organization with a developer's token and its gRPC stub."""

    def __init__(self, platform: LocalPlatform, admin: BearerStub, name: str) -> None:
        self.name = name
        admin.CreateOrganization(identity.CreateOrganizationRequest(name=name))
        account = admin.CreateServiceAccount(
            identity.CreateServiceAccountRequest(
                organization_name=name, name="dev", roles=[int(Role.DEVELOPER)]
            )
        )
        self.token = issue(platform, account.service_account.client_id, account.client_secret)
        self.compute = BearerStub(platform.grpc_target, compute_grpc.ComputeServiceStub, self.token)

    def tool(self, app: str) -> str:
        return f"ignite_{self.name.replace('-', '_')}_{app.replace('-', '_')}"

    def deploy(self, app: str, code: bytes, *, publish: bool = True, **settings: Any) -> None:
        self.compute.CreateApp(
            compute.CreateAppRequest(
                organization_name=self.name,
                name=app,
                runtime={"python": {}},
                code=python_source(code),
                **settings,
            )
        )
        if publish:
            self.compute.PublishDraft(
                compute.PublishDraftRequest(organization_name=self.name, app_name=app)
            )

    def get(self, app: str) -> Any:
        return self.compute.GetApp(
            compute.GetAppRequest(organization_name=self.name, app_name=app)
        ).app


@pytest.fixture(scope="module")
def platform(auth_platform: LocalPlatform) -> LocalPlatform:
    return auth_platform


@pytest.fixture(scope="module")
def admin(platform: LocalPlatform) -> BearerStub:
    client_id, secret = platform.admin_credentials()
    return BearerStub(
        platform.grpc_target,
        identity_grpc.IdentityServiceStub,
        issue(platform, client_id, secret),
    )


@pytest.fixture(scope="module")
def acme(platform: LocalPlatform, admin: BearerStub) -> Org:
    """The organization whose apps are tools."""
    org = Org(platform, admin, unique_name("acme-"))
    mcp = {"mcp_enabled": True, "input_schema": GREET_SCHEMA}
    org.deploy("greet", SEED_HANDLER, description="Greets someone by name", **mcp)
    # Published but never invoked: proves a refused call starts nothing (its
    # publish's readiness pod goes a second after the publish).
    org.deploy(
        "cold-greet",
        SEED_HANDLER,
        description="Greets, but stays cold",
        scaling={"scaledown_period_secs": 1},
        **mcp,
    )
    # Neither of these is a tool: a draft, and an app not exported.
    org.deploy("draft-greet", SEED_HANDLER, publish=False, description="Unpublished", **mcp)
    org.deploy("private-greet", SEED_HANDLER, description="Not for MCP")
    org.deploy(
        "add",
        ADD_HANDLER,
        description="Adds two numbers",
        mcp_enabled=True,
        input_schema=ADD_INPUT,
        output_schema=ADD_OUTPUT,
    )
    org.deploy(
        "broken",
        FAILING_HANDLER,
        description="Always fails",
        mcp_enabled=True,
        input_schema='{"type":"object"}',
    )
    return org


@pytest.fixture(scope="module")
def rival(platform: LocalPlatform, admin: BearerStub) -> Org:
    """Another organization, with a tool of its own."""
    org = Org(platform, admin, unique_name("rival-"))
    org.deploy(
        "greet",
        SEED_HANDLER,
        description="The rival's greeter",
        mcp_enabled=True,
        input_schema=GREET_SCHEMA,
    )
    return org


@contextlib.asynccontextmanager
async def mcp_client(
    platform: LocalPlatform, token: str | None, on_message: Any = None
) -> AsyncIterator[Client]:
    """The SDK's Client over Streamable HTTP, sending the bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http:
        transport = streamable_http_client(f"{platform.http_url}/mcp", http_client=http)
        # No response cache: every listing must come from the server.
        async with Client(transport, cache=None, message_handler=on_message) as client:
            yield client


async def tool_names(client: Client) -> set[str]:
    listing = await client.list_tools()
    assert listing.next_cursor is None
    return {tool.name for tool in listing.tools}


def text_of(result: Any) -> str:
    assert len(result.content) == 1 and result.content[0].type == "text"
    return str(result.content[0].text)


@pytest.mark.timeout(180)
async def test_lists_the_organizations_tools_and_calls_greet(
    platform: LocalPlatform, acme: Org
) -> None:
    async with mcp_client(platform, acme.token) as client:
        listing = await client.list_tools()
        tools = {tool.name: tool for tool in listing.tools}
        expected = {acme.tool(app) for app in ("greet", "cold-greet", "add", "broken")}
        # Other tests of this module add tools of their own; never these two.
        assert expected <= set(tools)
        assert acme.tool("draft-greet") not in tools and acme.tool("private-greet") not in tools
        assert all(name.startswith(acme.tool("")) for name in tools)
        greet = tools[acme.tool("greet")]
        assert greet.description == "Greets someone by name"
        assert greet.input_schema == json.loads(GREET_SCHEMA)
        assert greet.output_schema is None
        assert tools[acme.tool("add")].output_schema == json.loads(ADD_OUTPUT)

        result = await client.call_tool(acme.tool("greet"), {"name": "Ada"})
        assert not result.is_error, text_of(result)
        answer = json.loads(text_of(result))
        assert answer["greeting"] == "Hello, Ada!"
        assert answer["function_id"] == f"{acme.name}/greet"
        # Without an output schema there is no structured content.
        assert result.structured_content is None
    # The call really ran a pod: the check the cold-start test relies on can fail.
    assert acme.get("greet").ready_replicas >= 1


@pytest.mark.timeout(120)
async def test_arguments_that_break_the_schema_are_refused_before_any_pod_starts(
    platform: LocalPlatform, acme: Org
) -> None:
    deadline = time.monotonic() + 30
    while acme.get("cold-greet").ready_replicas:
        assert time.monotonic() < deadline, "the publish's readiness pod never went"
        await asyncio.sleep(0.2)
    async with mcp_client(platform, acme.token) as client:
        wrong_type = await client.call_tool(acme.tool("cold-greet"), {"name": 42})
        missing = await client.call_tool(acme.tool("cold-greet"), {})
    assert wrong_type.is_error
    assert "input schema" in text_of(wrong_type) and "42 is not of type 'string'" in text_of(
        wrong_type
    )
    assert missing.is_error
    assert "'name' is a required property" in text_of(missing)
    app = acme.get("cold-greet")
    assert app.ready_replicas == 0
    assert app.deployment_state == common.DEPLOYMENT_STATE_COLD


@pytest.mark.timeout(180)
async def test_output_schema_gives_structured_content(platform: LocalPlatform, acme: Org) -> None:
    async with mcp_client(platform, acme.token) as client:
        await client.list_tools()
        result = await client.call_tool(acme.tool("add"), {"a": 2, "b": 40})
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"sum": 42}
    assert json.loads(text_of(result)) == {"sum": 42}


@pytest.mark.timeout(180)
async def test_a_failing_handler_is_a_tool_error(platform: LocalPlatform, acme: Org) -> None:
    async with mcp_client(platform, acme.token) as client:
        result = await client.call_tool(acme.tool("broken"), {"anything": True})
    assert result.is_error
    assert "the flux capacitor is empty" in text_of(result)


@pytest.mark.timeout(120)
async def test_another_organization_sees_none_of_these_tools(
    platform: LocalPlatform, acme: Org, rival: Org
) -> None:
    async with mcp_client(platform, rival.token) as client:
        assert await tool_names(client) == {rival.tool("greet")}
        # Naming another organization's tool gets nowhere either.
        with pytest.raises(MCPError) as refused:
            await client.call_tool(acme.tool("greet"), {"name": "Eve"})
        assert "unknown tool" in str(refused.value)
    # And the other way round.
    async with mcp_client(platform, acme.token) as client:
        assert rival.tool("greet") not in await tool_names(client)


@pytest.mark.timeout(180)
async def test_tools_follow_publish_mcp_enabled_and_delete(
    platform: LocalPlatform, acme: Org
) -> None:
    first, second = "come-and-go", "switched-off"
    mcp = {"mcp_enabled": True, "input_schema": GREET_SCHEMA}
    acme.deploy(first, SEED_HANDLER, publish=False, description="Short-lived", **mcp)
    acme.deploy(second, SEED_HANDLER, description="Soon hidden", **mcp)
    async with mcp_client(platform, acme.token) as client:
        names = await tool_names(client)
        assert acme.tool(first) not in names  # no version published yet
        assert acme.tool(second) in names
        acme.compute.PublishDraft(
            compute.PublishDraftRequest(organization_name=acme.name, app_name=first)
        )
        assert acme.tool(first) in await tool_names(client)

        acme.compute.UpdateApp(
            compute.UpdateAppRequest(
                organization_name=acme.name,
                app_name=second,
                app=common.AppMeta(mcp_enabled=False),
                update_mask=field_mask_pb2.FieldMask(paths=["mcp_enabled"]),
            )
        )
        acme.compute.DeleteApp(
            compute.DeleteAppRequest(organization_name=acme.name, app_name=first)
        )
        names = await tool_names(client)
        assert acme.tool(first) not in names
        assert acme.tool(second) not in names
        assert acme.tool("greet") in names
        with pytest.raises(MCPError) as refused:
            await client.call_tool(acme.tool(second), {"name": "Ada"})
        assert "unknown tool" in str(refused.value)


@pytest.mark.timeout(120)
async def test_an_open_stream_hears_that_the_tools_changed(
    platform: LocalPlatform, acme: Org
) -> None:
    changed = asyncio.Event()

    async def on_message(message: Any) -> None:
        method = getattr(getattr(message, "root", message), "method", None)
        if method == "notifications/tools/list_changed":
            changed.set()

    app = unique_name("fresh-")
    async with mcp_client(platform, acme.token, on_message) as client:
        assert client.server_capabilities.tools is not None
        assert client.server_capabilities.tools.list_changed is True
        assert acme.tool(app) not in await tool_names(client)
        # Give the stream its first reading of the list before changing it.
        await asyncio.sleep(2)
        assert not changed.is_set()
        acme.deploy(
            app, SEED_HANDLER, description="New", mcp_enabled=True, input_schema=GREET_SCHEMA
        )
        await asyncio.wait_for(changed.wait(), timeout=30)
        assert acme.tool(app) in await tool_names(client)


def test_mcp_needs_description_and_input_schema(acme: Org) -> None:
    """CreateApp and UpdateApp refuse mcp_enabled without its two fields."""
    for missing, settings in (
        ("description", {"input_schema": GREET_SCHEMA}),
        ("input_schema", {"description": "No schema"}),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            acme.compute.CreateApp(
                compute.CreateAppRequest(
                    organization_name=acme.name,
                    name=unique_name("nope-"),
                    runtime={"python": {}},
                    mcp_enabled=True,
                    **settings,
                )
            )
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert missing in (refused.value.details() or "")
        info = error_info(refused.value)
        assert info is not None and info.reason == f"MCP_NEEDS_{missing.upper()}"
    # private-greet has neither: turning MCP on is refused, naming description.
    with pytest.raises(grpc.RpcError) as refused:
        acme.compute.UpdateApp(
            compute.UpdateAppRequest(
                organization_name=acme.name,
                app_name="private-greet",
                app=common.AppMeta(mcp_enabled=True, description=""),
                update_mask=field_mask_pb2.FieldMask(paths=["mcp_enabled", "description"]),
            )
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "description" in (refused.value.details() or "")
    assert acme.get("private-greet").mcp_enabled is False


# -- the transport's refusals, seen over plain HTTP ---------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "curl-like", "version": "1"},
    },
}
ACCEPT = "application/json, text/event-stream"


def post(platform: LocalPlatform, body: Any, **headers: str) -> requests.Response:
    return requests.post(
        f"{platform.http_url}/mcp",
        json=body,
        headers={"Accept": ACCEPT, **headers},
        timeout=60,
    )


@pytest.mark.timeout(60)
async def test_missing_or_bad_token_is_401_with_a_challenge(
    platform: LocalPlatform, acme: Org
) -> None:
    anonymous = post(platform, INITIALIZE)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer ")
    assert anonymous.json()["error"]["code"] == -32600
    forged = post(platform, INITIALIZE, Authorization="Bearer not-a-token")
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["WWW-Authenticate"]
    # The SDK's client cannot connect without a token either.
    with pytest.raises(BaseException) as failed:
        async with mcp_client(platform, None):
            pass
    # The SDK raises from inside its task group, so the error may come grouped.
    if isinstance(failed.value, BaseExceptionGroup):
        assert failed.group_contains(MCPError, match="Bearer")
    else:
        assert isinstance(failed.value, MCPError) and "Bearer" in str(failed.value)


def test_foreign_origin_is_403_and_loopback_origins_pass(
    platform: LocalPlatform, acme: Org
) -> None:
    bearer = f"Bearer {acme.token}"
    evil = post(platform, INITIALIZE, Authorization=bearer, Origin="https://evil.example")
    assert evil.status_code == 403
    # Refused before the token is even looked at.
    assert post(platform, INITIALIZE, Origin="https://evil.example").status_code == 403
    local = post(platform, INITIALIZE, Authorization=bearer, Origin="http://localhost:6274")
    assert local.status_code == 200, local.text
    assert local.json()["result"]["protocolVersion"] == "2025-11-25"


def test_sessions_are_required_and_can_be_ended(
    platform: LocalPlatform, acme: Org, rival: Org
) -> None:
    bearer = f"Bearer {acme.token}"
    opened = post(platform, INITIALIZE, Authorization=bearer)
    assert opened.status_code == 200, opened.text
    session = opened.headers["Mcp-Session-Id"]
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    versioned = {"Authorization": bearer, "MCP-Protocol-Version": "2025-11-25"}
    assert post(platform, ping, **versioned).status_code == 400  # no session
    pong = post(platform, ping, **versioned, **{"Mcp-Session-Id": session})
    assert pong.status_code == 200 and pong.json() == {"jsonrpc": "2.0", "id": 2, "result": {}}
    # A session belongs to the token subject that opened it.
    stolen = post(
        platform,
        ping,
        **{"Mcp-Session-Id": session, "Authorization": f"Bearer {rival.token}"},
    )
    assert stolen.status_code == 404
    unsupported = post(
        platform,
        ping,
        **{
            "Authorization": bearer,
            "Mcp-Session-Id": session,
            "MCP-Protocol-Version": "1999-01-01",
        },
    )
    assert unsupported.status_code == 400
    ended = requests.delete(
        f"{platform.http_url}/mcp",
        headers={"Authorization": bearer, "Mcp-Session-Id": session},
        timeout=30,
    )
    assert ended.status_code == 204
    gone = post(platform, ping, **versioned, **{"Mcp-Session-Id": session})
    assert gone.status_code == 404
    # The GET stream needs a live session too, and a client that reads SSE.
    for headers, status in (
        ({"Accept": "text/event-stream"}, 400),
        ({"Accept": "text/event-stream", "Mcp-Session-Id": session}, 404),
        ({"Accept": "application/json", "Mcp-Session-Id": session}, 406),
    ):
        stream = requests.get(
            f"{platform.http_url}/mcp", headers={"Authorization": bearer, **headers}, timeout=30
        )
        assert stream.status_code == status, headers
    assert requests.put(f"{platform.http_url}/mcp", timeout=30).status_code == 405


@pytest.mark.timeout(120)
def test_tools_call_answers_in_json_or_sse_as_the_client_accepts(
    platform: LocalPlatform, acme: Org
) -> None:
    bearer = f"Bearer {acme.token}"
    session = post(platform, INITIALIZE, Authorization=bearer).headers["Mcp-Session-Id"]
    call = {
        "jsonrpc": "2.0",
        "id": "c1",
        "method": "tools/call",
        "params": {"name": acme.tool("greet"), "arguments": {"name": "Grace"}},
    }
    headers = {"Authorization": bearer, "Mcp-Session-Id": session}
    plain = post(platform, call, **headers, Accept="application/json")
    assert plain.headers["Content-Type"].startswith("application/json")
    result = plain.json()["result"]
    assert result["isError"] is False
    assert json.loads(result["content"][0]["text"])["greeting"] == "Hello, Grace!"
    assert result["_meta"]["ignite.dodil.io/execution_id"]

    streamed = post(platform, call, **headers)
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    events = [line for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert len(events) == 1
    message = json.loads(events[0][len("data: ") :])
    assert message["id"] == "c1"
    assert json.loads(message["result"]["content"][0]["text"])["greeting"] == "Hello, Grace!"

    headers["Accept"] = "application/json"
    unknown = post(platform, {**call, "params": {"name": "ignite_nope_x"}}, **headers)
    assert unknown.json()["error"]["code"] == -32602
    method = post(platform, {"jsonrpc": "2.0", "id": 3, "method": "resources/list"}, **headers)
    assert method.json()["error"]["code"] == -32601
    wrong_accept = post(platform, call, **{**headers, "Accept": "text/html"})
    assert wrong_accept.status_code == 406


@pytest.fixture(scope="module")
def open_platform() -> Iterator[LocalPlatform]:
    """`make run`'s kind of platform: authentication off."""
    with LocalPlatform(private_state_dir("ignite-mcp-open-")) as running:
        yield running


@pytest.mark.timeout(180)
async def test_without_authentication_the_url_names_the_organization(
    open_platform: LocalPlatform,
) -> None:
    org = unique_name("local-")
    stub = BearerStub(open_platform.grpc_target, compute_grpc.ComputeServiceStub, None)
    stub.CreateApp(
        compute.CreateAppRequest(
            organization_name=org,
            name="greet",
            runtime={"python": {}},
            code=python_source(SEED_HANDLER),
            description="Greets",
            mcp_enabled=True,
            input_schema=GREET_SCHEMA,
        )
    )
    stub.PublishDraft(compute.PublishDraftRequest(organization_name=org, app_name="greet"))
    tool = f"ignite_{org.replace('-', '_')}_greet"
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300)) as http:
        url = f"{open_platform.http_url}/mcp?organization={org}"
        async with Client(streamable_http_client(url, http_client=http), cache=None) as client:
            assert await tool_names(client) == {tool}
            result = await client.call_tool(tool, {"name": "Linus"})
            assert json.loads(text_of(result))["greeting"] == "Hello, Linus!"
        # Without the parameter there is no organization, so no tools.
        bare = f"{open_platform.http_url}/mcp"
        async with Client(streamable_http_client(bare, http_client=http), cache=None) as client:
            assert await tool_names(client) == set()
