"""Seed 000's programmatic way, run as written against the real platform.

The program below is the seed's code: the deploy script (CreateApp →
SaveDraft → PublishDraft), then the direct-URL snippet, then the Invoke RPC
snippet. Only the constants differ: ``API`` is the local gateway, the
direct URL is ``http://greet-acme-corp.ignite.localhost:<port>/`` instead of
the hosted domain, ``DODIL_TOKEN`` is an access token the platform issued
at its OAuth 2.0 token endpoint (client credentials), and ``HANDLER_SRC`` is
the seed's handler as the other tests deploy it (tests/support.py).

Browsers, curl and systemd-resolved resolve ``*.localhost`` to loopback
(RFC 6761); glibc here does not, so the program runs with a
``sitecustomize`` that does the same for Python's resolver.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ignite_launcher import LocalPlatform
from tests.gateway.conftest import access_token
from tests.support import SEED_HANDLER, python_source, require_tool, stub_for, unique_name

SEED_PROGRAM = r'''
import base64
import os
import time

import requests

API = "@API@"
ORG = "acme-corp"
APP = "greet"
# An IAM access token — see https://docs.dodil.io/iam/access-tokens
TOKEN = os.environ["DODIL_TOKEN"]

HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Content-Type": "application/json",
}

HANDLER_SRC = b"""@HANDLER_SRC@"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# 1. CreateApp — POST /v1/ignite/app/{org}. Metadata only, no code.
resp = requests.post(
    f"{API}/v1/ignite/app/{ORG}",
    headers=HEADERS,
    json={
        "name": APP,
        "resourceTier": "RESOURCE_TIER_SMALL",
        "description": "A tiny greeting microservice",
    },
)
resp.raise_for_status()
print("created:", resp.json()["appId"])  # "acme-corp/greet"

# 2. SaveDraft — POST .../draft. The compile vs image branch is the oneof in
# `code`; here we pick `compile` with the python runtime and pass the source
# bytes (base64) in `sourceCode`.
resp = requests.post(
    f"{API}/v1/ignite/app/{ORG}/{APP}/draft",
    headers=HEADERS,
    json={
        "code": {
            "compile": {
                "runtime": {"python": {}},
                "sourceCode": b64(HANDLER_SRC),
            }
        }
    },
)
resp.raise_for_status()
print("draft saved:", resp.json()["draft"]["codeHash"])

# 3. PublishDraft — POST .../draft/publish. Freezes the draft into an
# immutable, numbered version and makes the app invocable. Python needs no
# separate compile step.
resp = requests.post(
    f"{API}/v1/ignite/app/{ORG}/{APP}/draft/publish",
    headers=HEADERS,
    json={},
)
resp.raise_for_status()
print("published version:", resp.json()["publishedVersion"])

# Invoke the published app over HTTP (the direct FQDN).
resp = requests.post(
    f"http://{APP}-{ORG}.ignite.localhost:@PORT@/",
    headers=HEADERS,
    json={"name": "Ada"},
    # The first call to a cold app waits while a pod starts (0→1).
    timeout=120,
)
resp.raise_for_status()
print(resp.json())  # {"greeting": "Hello, Ada!", ...}

# The Invoke RPC and its streaming shape.
import json

envelope = {
    "http": {
        "method": "HTTP_METHOD_POST",
        "path": "/",
        "headers": {"content-type": "application/json"},
    },
    "body": b64(json.dumps({"name": "Ada"}).encode("utf-8")),
}

with requests.post(
    f"{API}/v1/ignite/app/{ORG}/{APP}/invoke",
    headers=HEADERS,
    json=envelope,
    stream=True,  # read the body as it streams (head → chunks → trailer)
    timeout=120,
) as resp:
    resp.raise_for_status()
    # The `head` frame's execution_id surfaces as a response header.
    execution_id = resp.headers.get("X-Ignite-Execution-Id", "")
    # The `chunk` frames are the streamed response body.
    body = b"".join(resp.iter_content(chunk_size=None))

print("execution_id:", execution_id)
print("result:", json.loads(body))
'''

# Resolves *.localhost to loopback for the program, as browsers and curl do.
LOCALHOST_RESOLVER = """
import socket

_getaddrinfo = socket.getaddrinfo


def _loopback_for_localhost(host, *args, **kwargs):
    if isinstance(host, str) and (host == "localhost" or host.endswith(".localhost")):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_for_localhost
"""

ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


@pytest.mark.timeout(240)
def test_seed_000_programmatic_way(secured_platform: LocalPlatform, tmp_path: Path) -> None:
    program = (
        SEED_PROGRAM.replace("@API@", secured_platform.http_url)
        .replace("@PORT@", str(secured_platform.gateway_port))
        .replace("@HANDLER_SRC@", SEED_HANDLER.decode())
    )
    (tmp_path / "seed_000.py").write_text(program)
    (tmp_path / "sitecustomize.py").write_text(LOCALHOST_RESOLVER)
    token = access_token(secured_platform)
    # The seed's reader works in their organization: the administrator made
    # it when the reader joined (apps live only in organizations that exist).
    made = requests.post(
        f"{secured_platform.http_url}/v1/ignite/org",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": "acme-corp"},
        timeout=30,
    )
    assert made.status_code in (200, 409), made.text
    result = subprocess.run(
        [sys.executable, "seed_000.py"],
        cwd=tmp_path,
        env={
            **secured_platform.env,
            "DODIL_TOKEN": token,
            "PYTHONPATH": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=200,
    )
    # Padded, so a short output fails an assertion that shows it.
    lines = [*result.stdout.splitlines(), *[""] * 6]
    context = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"
    # The deploy script.
    assert lines[:1] == ["created: acme-corp/greet"], context
    assert re.fullmatch(r"draft saved: [0-9a-f]{64}", lines[1]), context
    assert lines[2] == "published version: 1", context
    # The direct URL.
    assert result.returncode == 0, context
    direct = ast.literal_eval(lines[3])
    assert direct["greeting"] == "Hello, Ada!"
    assert direct["function_id"] == "acme-corp/greet"
    assert ULID.fullmatch(direct["execution_id"]), context
    # The Invoke RPC.
    execution_id = lines[4].removeprefix("execution_id: ")
    assert ULID.fullmatch(execution_id), context
    result_line = ast.literal_eval(lines[5].removeprefix("result: "))
    assert result_line["greeting"] == "Hello, Ada!"
    assert result_line["execution_id"] == execution_id  # header and handler agree
    # "It's still Bearer-authed": without the token, the app URL refuses.
    refused = requests.post(
        f"{secured_platform.http_url}/",
        headers={"Host": secured_platform.app_host("acme-corp", "greet")},
        json={"name": "Ada"},
        timeout=30,
    )
    assert refused.status_code == 401, refused.text


def _publish_greeter(platform: LocalPlatform) -> tuple[str, str]:
    from dodil.ignite.v1 import ignite_compute_pb2 as compute

    org, app = unique_name("org"), "greet"
    stub = stub_for(platform.grpc_target)
    stub.CreateApp(compute.CreateAppRequest(organization_name=org, name=app))
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org, app_name=app, code=python_source(SEED_HANDLER)
        )
    )
    stub.PublishDraft(compute.PublishDraftRequest(organization_name=org, app_name=app))
    return org, app


@pytest.mark.timeout(180)
def test_curl_against_real_invoke_and_app_url(platform: LocalPlatform) -> None:
    org, app = _publish_greeter(platform)
    envelope = json.dumps(
        {"http": {"method": "HTTP_METHOD_POST", "path": "/"}, "body": "eyJuYW1lIjogIkFkYSJ9"}
    )  # {"name": "Ada"}
    argv = [
        require_tool("curl", "tools/toolchains.sh"), "-sS", "-N", "-i", "--max-time", "120",
        "-H", "TE: trailers", "-H", "Content-Type: application/json",
        "-d", envelope,
        f"{platform.http_url}/v1/ignite/app/{org}/{app}/invoke",
    ]  # fmt: skip
    shown = subprocess.run(argv, capture_output=True, timeout=150)
    assert shown.returncode == 0, shown.stderr
    # Bytes, not text mode: the CRLFs are part of what is checked.
    output = shown.stdout.decode()
    head, _, rest = output.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200"), output
    execution_id = re.search(r"X-Ignite-Execution-Id: (\S+)", head)
    assert execution_id is not None and ULID.fullmatch(execution_id.group(1))
    body, end = json.JSONDecoder().raw_decode(rest)
    assert body["greeting"] == "Hello, Ada!"
    assert body["execution_id"] == execution_id.group(1)
    trailers = rest[end:]
    total = re.search(r"X-Ignite-Total-Body-Bytes: (\d+)", trailers)
    assert total is not None and int(total.group(1)) == end, output
    assert re.search(r"X-Ignite-Duration-Ms: \d+", trailers), output
    # The direct URL: curl resolves *.localhost itself.
    argv = [
        "curl", "-sS", "--max-time", "120", "-H", "Content-Type: application/json",
        "-d", '{"name": "Grace"}',
        f"http://{platform.app_host(org, app)}:{platform.gateway_port}/",
    ]  # fmt: skip
    direct = subprocess.run(argv, capture_output=True, text=True, timeout=150)
    assert direct.returncode == 0, direct.stderr
    assert json.loads(direct.stdout)["greeting"] == "Hello, Grace!"


@pytest.mark.timeout(180)
def test_app_url_with_requests_and_host_header(platform: LocalPlatform) -> None:
    org, app = _publish_greeter(platform)
    resp = requests.post(
        f"{platform.http_url}/",
        headers={"Host": platform.app_host(org, app), "Authorization": "Bearer t"},
        json={"name": "Ada"},
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["function_id"] == f"{org}/{app}"
    assert resp.headers["X-Ignite-Execution-Id"] == resp.json()["execution_id"]
    missing = requests.get(
        f"{platform.http_url}/", headers={"Host": platform.app_host(org, "nope")}, timeout=30
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["status"] == "NOT_FOUND"


@pytest.mark.timeout(180)
def test_logs_stream_as_json_lines_from_the_real_server(platform: LocalPlatform) -> None:
    from dodil.ignite.v1 import ignite_compute_pb2 as compute

    org, app = unique_name("org"), "talker"
    handler = (
        b'def handler(payload, ctx):\n    print("said: " + payload.decode())\n    return "ok"\n'
    )
    stub = stub_for(platform.grpc_target)
    stub.CreateApp(compute.CreateAppRequest(organization_name=org, name=app))
    stub.SaveDraft(
        compute.SaveDraftRequest(organization_name=org, app_name=app, code=python_source(handler))
    )
    stub.PublishDraft(compute.PublishDraftRequest(organization_name=org, app_name=app))
    said = requests.post(
        f"{platform.http_url}/",
        headers={"Host": platform.app_host(org, app)},
        data=b"hello",
        timeout=120,
    )
    assert said.status_code == 200 and said.text == "ok"
    execution_id = said.headers["X-Ignite-Execution-Id"]
    url = f"{platform.http_url}/v1/ignite/execution/{org}/{execution_id}/logs"
    messages: list[str] = []
    for _ in range(50):  # log lines are stored shortly after the response
        resp = requests.get(url, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.headers["Content-Type"] == "application/x-ndjson"
        entries = [json.loads(line)["result"]["entry"] for line in resp.text.splitlines()]
        messages = [entry["message"] for entry in entries]
        if "said: hello" in messages:
            break
        time.sleep(0.1)
    assert "said: hello" in messages
    entry = entries[messages.index("said: hello")]
    assert entry["executionId"] == execution_id
    assert entry["stream"] == "LOG_STREAM_STDOUT"
    assert int(entry["timestampMs"]) > 0
