"""The API surface over HTTP: transcoding both ways, metadata, errors."""

from __future__ import annotations

import base64
import hashlib

from tests.gateway.conftest import LiveGateway


async def test_create_app_camel_case_both_ways(live: LiveGateway) -> None:
    async with live.session.post(
        f"{live.url}/v1/ignite/app/acme",
        json={
            "name": "greet",
            "resourceTier": "RESOURCE_TIER_MEDIUM",
            "description": "hi",
            "env": {"K": "V"},
            "someFutureField": {"ignored": True},
        },
    ) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["appId"] == "acme/greet"
    app = body["app"]
    assert app["resourceTier"] == "RESOURCE_TIER_MEDIUM"
    assert app["createdAtMs"] == "1700000000123"  # int64 as a string
    assert app["deploymentState"] == "DEPLOYMENT_STATE_CREATED"
    assert app["env"] == {"K": "V"}
    assert app["activeVersion"] == 0  # unset fields are written out


async def test_proto_field_names_accepted(live: LiveGateway) -> None:
    async with live.session.post(
        f"{live.url}/v1/ignite/app/acme",
        json={"name": "snake", "resource_tier": 3, "description": "x"},
    ) as resp:
        body = await resp.json()
    assert body["app"]["resourceTier"] == "RESOURCE_TIER_LARGE"


async def test_path_variables_win_over_the_body(live: LiveGateway) -> None:
    async with live.session.post(
        f"{live.url}/v1/ignite/app/from-path", json={"organizationName": "from-body", "name": "a"}
    ) as resp:
        body = await resp.json()
    assert body["appId"] == "from-path/a"


async def test_bytes_are_base64(live: LiveGateway) -> None:
    source = b"def handler(payload, ctx):\n    return 1\n"
    async with live.session.post(
        f"{live.url}/v1/ignite/app/acme/greet/draft",
        json={
            "code": {
                "compile": {
                    "runtime": {"python": {}},
                    "sourceCode": base64.b64encode(source).decode(),
                }
            }
        },
    ) as resp:
        body = await resp.json()
    assert body["draft"]["codeHash"] == hashlib.sha256(source).hexdigest()
    assert body["draft"]["codeSizeBytes"] == str(len(source))
    async with live.session.get(f"{live.url}/v1/ignite/execution/acme?appName=x") as resp:
        execution = (await resp.json())["executions"][0]
    assert base64.b64decode(execution["result"]) == b"\x00\x01binary"
    assert execution["metrics"]["coldStartMs"] == str(2**40)


async def test_query_parameters(live: LiveGateway) -> None:
    url = f"{live.url}/v1/ignite/app/acme?pageSize=7&page_token=tok%20en&unknown=1"
    async with live.session.get(url) as resp:
        body = await resp.json()
    assert body["apps"][0]["name"] == "7:tok en"
    # Enums by name, and by number.
    for status in ("EXECUTION_STATUS_FAILED", "4"):
        url = f"{live.url}/v1/ignite/execution/acme?app_name=greet&status={status}"
        async with live.session.get(url) as resp:
            execution = (await resp.json())["executions"][0]
        assert execution["status"] == "EXECUTION_STATUS_FAILED"
        assert execution["appId"] == "greet"


async def test_typed_path_variable(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/v1/ignite/app/acme/greet/versions/12") as resp:
        assert (await resp.json())["version"]["version"] == 12
    async with live.session.get(f"{live.url}/v1/ignite/app/acme/greet/versions/twelve") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["status"] == "INVALID_ARGUMENT"


async def test_patch_with_field_mask(live: LiveGateway) -> None:
    async with live.session.patch(
        f"{live.url}/v1/ignite/app/acme/greet",
        json={"app": {"description": "new"}, "updateMask": "description,maxConcurrency"},
    ) as resp:
        body = await resp.json()
    assert body["app"]["description"] == "new|description,max_concurrency"


async def test_metadata_passed_on(live: LiveGateway) -> None:
    live.fake.metadata.clear()
    async with live.session.get(
        f"{live.url}/v1/ignite/app/acme/greet",
        headers={
            "Authorization": "Bearer secret-token",
            "X-Request-Id": "req-123",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "Cookie": "stays=here",
        },
    ) as resp:
        assert resp.headers["X-Request-Id"] == "req-123"
    seen = live.fake.metadata[-1]
    assert seen["authorization"] == "Bearer secret-token"
    assert seen["x-request-id"] == "req-123"
    assert seen["traceparent"].startswith("00-0af7651916cd43dd")
    assert "cookie" not in seen
    async with live.session.get(f"{live.url}/v1/ignite/app/acme/greet") as resp:
        generated = resp.headers["X-Request-Id"]
    assert len(generated) == 26  # a ULID
    assert live.fake.metadata[-1]["x-request-id"] == generated
    assert "authorization" not in live.fake.metadata[-1]


async def test_grpc_error_becomes_json_error_with_error_info(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/v1/ignite/app/acme/missing") as resp:
        assert resp.status == 404
        body = await resp.json()
    error = body["error"]
    assert error["code"] == 404
    assert error["status"] == "NOT_FOUND"
    assert error["message"] == "no such app"
    assert error["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "APP_NOT_FOUND",
            "domain": "ignite.dodil.io",
            "metadata": {"hint": "from-fake"},
        }
    ]
    async with live.session.post(f"{live.url}/v1/ignite/app/acme", json={"name": "exists"}) as resp:
        assert resp.status == 409
        assert (await resp.json())["error"]["details"][0]["reason"] == "APP_ALREADY_EXISTS"


async def test_status_code_table(live: LiveGateway) -> None:
    expected = {
        "INVALID_ARGUMENT": 400,
        "FAILED_PRECONDITION": 400,
        "OUT_OF_RANGE": 400,
        "UNAUTHENTICATED": 401,
        "PERMISSION_DENIED": 403,
        "NOT_FOUND": 404,
        "ALREADY_EXISTS": 409,
        "ABORTED": 409,
        "RESOURCE_EXHAUSTED": 429,
        "CANCELLED": 499,
        "UNKNOWN": 500,
        "INTERNAL": 500,
        "DATA_LOSS": 500,
        "UNIMPLEMENTED": 501,
        "UNAVAILABLE": 503,
        "DEADLINE_EXCEEDED": 504,
    }
    for name, http_code in expected.items():
        app = "status-" + name.lower().replace("_", "-")
        async with live.session.get(f"{live.url}/v1/ignite/app/acme/{app}") as resp:
            assert resp.status == http_code, name
            body = await resp.json()
        assert body["error"]["status"] == name
        assert body["error"]["details"][0]["reason"] == name


async def test_bad_input_is_400_never_500(live: LiveGateway) -> None:
    url = f"{live.url}/v1/ignite/app/acme"
    cases = [
        b"{not json",
        b"[1, 2]",
        b'"a string"',
        b'{"name": 5}',
        b'{"resourceTier": "NO_SUCH_TIER"}',
        b'{"env": {"k": 1}}',
        b'{"limits": 3}',
        b'{"maxConcurrency": -1}',
        b'{"maxConcurrency": 1e40}',
        b"\xff\xfe",
    ]
    for raw in cases:
        async with live.session.post(
            url, data=raw, headers={"Content-Type": "application/json"}
        ) as resp:
            assert resp.status == 400, raw
            body = await resp.json()
        assert body["error"]["status"] == "INVALID_ARGUMENT"
        assert body["error"]["details"][0]["domain"] == "ignite.dodil.io"
        assert body["error"]["message"]
    async with live.session.get(f"{live.url}/v1/ignite/app/acme?pageSize=abc") as resp:
        assert resp.status == 400
    async with live.session.get(f"{live.url}/v1/ignite/app/acme/greet/logs?follow=maybe") as resp:
        assert resp.status == 400


async def test_oversized_body_is_413(live: LiveGateway) -> None:
    from ignite_gateway.config import MAX_JSON_BODY_BYTES

    async with live.session.post(
        f"{live.url}/v1/ignite/app/acme",
        data=b" " * (MAX_JSON_BODY_BYTES + 1),
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 413
        body = await resp.json()
    assert body["error"]["details"][0]["reason"] == "REQUEST_TOO_LARGE"


async def test_a_32_mib_payload_fits(live: LiveGateway) -> None:
    payload = b"\x07" * (32 * 1024 * 1024)
    async with live.session.post(
        f"{live.url}/v1/ignite/app/acme/greet/draft",
        json={"code": {"compile": {"sourceCode": base64.b64encode(payload).decode()}}},
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["draft"]["codeHash"] == hashlib.sha256(payload).hexdigest()


async def test_unknown_route_and_method(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/v1/nothing/here") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["details"][0]["reason"] == "ROUTE_NOT_FOUND"
    async with live.session.put(f"{live.url}/v1/ignite/app/acme/greet") as resp:
        assert resp.status == 405
        assert set(resp.headers["Allow"].split(", ")) == {"GET", "PATCH", "DELETE"}


async def test_server_internal_error_is_a_json_500(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/v1/ignite/app/acme/crash") as resp:
        assert resp.status == 500
        body = await resp.json()
    assert body["error"] == {"code": 500, "message": "boom", "status": "INTERNAL", "details": []}


async def test_health_and_readiness(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/healthz") as resp:
        assert resp.status == 200
    async with live.session.get(f"{live.url}/readyz") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "SERVING"
