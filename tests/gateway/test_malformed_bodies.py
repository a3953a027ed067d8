"""Malformed and oversize bodies at the real HTTP edge: nested JSON 10,000
levels deep, bytes that are not base64, bytes that are not UTF-8, bodies over
the limit. Each is a 400 or 413 with an ErrorInfo reason, never a 500, and
nothing stored changes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_gateway.config import MAX_JSON_BODY_BYTES, MAX_PAYLOAD_BYTES
from ignite_launcher import LocalPlatform
from tests.support import SEED_HANDLER, deploy_python, python_source, stub_for, unique_name

DEEP = 10_000


def _nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def _stored(stub, org: str) -> tuple:
    app = stub.GetApp(compute.GetAppRequest(organization_name=org, app_name="greet")).app
    versions = stub.ListVersions(
        compute.ListVersionsRequest(organization_name=org, app_name="greet")
    ).versions
    draft = stub.GetDraft(compute.GetDraftRequest(organization_name=org, app_name="greet")).draft
    apps = stub.ListApps(compute.ListAppsRequest(organization_name=org)).apps
    executions = stub.ListExecutions(
        compute.ListExecutionsRequest(organization_name=org, page_size=500)
    ).executions
    return (
        (app.active_version, app.description, app.input_schema, dict(app.env)),
        [(v.version, v.status, v.code_hash) for v in versions],
        draft.code_hash,
        sorted(a.name for a in apps),
        sorted(e.id for e in executions),
    )


@pytest.fixture
def greet(platform: LocalPlatform) -> tuple[Any, str]:
    """A published app with a different draft saved, in an org of its own."""
    stub = stub_for(platform.grpc_target)
    org = unique_name("org")
    deploy_python(stub, org, "greet", SEED_HANDLER, description="kept")
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org,
            app_name="greet",
            code=python_source(SEED_HANDLER + b"\n# draft\n"),
        )
    )
    return stub, org


def _refused(resp: requests.Response, http_code: int, reason: str) -> None:
    assert resp.status_code == http_code, (resp.status_code, resp.text[:500])
    error = resp.json()["error"]
    assert error["code"] == http_code
    info = error["details"][0]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["domain"] == "ignite.dodil.io"
    assert info["reason"] == reason, error
    assert error["message"]


def test_malformed_bodies_are_400_and_change_nothing(platform, greet):
    stub, org = greet
    before = _stored(stub, org)
    api = f"{platform.http_url}/v1/ignite/app/{org}"
    invoke = f"{api}/greet/invoke"
    cases: list[tuple[str, str, bytes, str]] = [
        # Nested 10,000 levels deep: the whole body, inside a known field,
        # inside an unknown one, and as objects rather than arrays.
        ("create", api, _nested(DEEP).encode(), "JSON_TOO_DEEP"),
        (
            "create",
            api,
            f'{{"name": "deep", "description": {_nested(DEEP)}}}'.encode(),
            "JSON_TOO_DEEP",
        ),
        ("invoke", invoke, f'{{"body": "", "unknown": {_nested(DEEP)}}}'.encode(), "JSON_TOO_DEEP"),
        ("invoke", invoke, ('{"a":' * DEEP + "1" + "}" * DEEP).encode(), "JSON_TOO_DEEP"),
        # Deep enough to pass Python's decoder, past the documented 100.
        ("async", f"{invoke}/async", f'{{"x": {_nested(150)}}}'.encode(), "JSON_TOO_DEEP"),
        # Bytes that are not base64.
        ("invoke", invoke, b'{"body": "!!!notbase64"}', "INVALID_BASE64"),
        ("invoke", invoke, b'{"body": "!!!notbase64x"}', "INVALID_BASE64"),
        ("async", f"{invoke}/async", b'{"body": "aGk=!"}', "INVALID_BASE64"),
        ("invoke", invoke, b'{"body": "a+b-"}', "INVALID_BASE64"),  # two alphabets
        ("invoke", invoke, b'{"body": "aGk==="}', "INVALID_BASE64"),
        (
            "draft",
            f"{api}/greet/draft",
            b'{"code": {"compile": {"sourceCode": "not base64!"}}}',
            "INVALID_BASE64",
        ),
        # Bytes that are not UTF-8.
        ("invoke", invoke, b'{"body": "\xff\xfe"}', "INVALID_UTF8"),
        ("create", api, b'{"name": "caf\xe9"}', "INVALID_UTF8"),
        ("create", api, b"\xff\xfe{\x00}\x00", "INVALID_UTF8"),  # UTF-16 is not JSON on the wire
    ]
    for name, url, body, reason in cases:
        resp = requests.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=60
        )
        _refused(resp, 400, reason)
        assert resp.json()["error"]["status"] == "INVALID_ARGUMENT", name

    # A schema nested 10,000 deep inside a JSON string passes the edge and is
    # refused by the server, still as bad input.
    schema = json.dumps({"name": "schemed", "inputSchema": _nested(DEEP)})
    resp = requests.post(api, data=schema, headers={"Content-Type": "application/json"}, timeout=60)
    _refused(resp, 400, "SCHEMA_TOO_DEEP")

    # The token endpoint and MCP read JSON the same way: refused, not a 500.
    token = requests.post(
        f"{platform.http_url}/v1/ignite/token",
        data=_nested(DEEP),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"
    mcp = requests.post(
        f"{platform.http_url}/mcp",
        data=_nested(DEEP),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        timeout=60,
    )
    assert mcp.status_code < 500, mcp.text[:300]

    assert _stored(stub, org) == before
    # Well-formed input still works: URL-safe, unpadded base64 included.
    body = base64.urlsafe_b64encode(b'{"name": "Ada?>"}').decode().rstrip("=")
    ok = requests.post(invoke, json={"body": body}, timeout=120)
    assert ok.status_code == 200, ok.text
    assert ok.json()["greeting"] == "Hello, Ada?>!"


def test_oversize_bodies_are_413_and_change_nothing(platform, greet):
    stub, org = greet
    before = _stored(stub, org)
    api = f"{platform.http_url}/v1/ignite/app/{org}"
    # An API body past its limit, announced by Content-Length...
    padding = " " * (MAX_JSON_BODY_BYTES + 1 - len('{"body": ""}'))
    big = ('{"body": ""' + padding + "}").encode()
    resp = requests.post(f"{api}/greet/invoke", data=big, timeout=120)
    _refused(resp, 413, "REQUEST_TOO_LARGE")
    # ... or streamed in chunks without one.
    chunks = (big[i : i + (1 << 20)] for i in range(0, len(big), 1 << 20))
    resp = requests.post(f"{api}/greet/invoke/async", data=chunks, timeout=120)
    _refused(resp, 413, "REQUEST_TOO_LARGE")
    # A direct app URL past 32 MiB.
    resp = requests.post(
        f"{platform.http_url}/",
        headers={"Host": platform.app_host(org, "greet")},
        data=b"x" * (MAX_PAYLOAD_BYTES + 1),
        timeout=120,
    )
    _refused(resp, 413, "REQUEST_TOO_LARGE")
    # Within the HTTP limit but over the server's message limit (a long
    # description is not base64-inflated): the server's MESSAGE_TOO_LARGE,
    # which is a 413 at the edge too.
    description = "d" * (MAX_JSON_BODY_BYTES - 1024 * 1024)
    resp = requests.post(api, json={"name": "huge", "description": description}, timeout=120)
    _refused(resp, 413, "MESSAGE_TOO_LARGE")
    assert resp.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert _stored(stub, org) == before
