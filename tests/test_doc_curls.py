"""The curl commands of docs/http-api.md (streaming invoke, logs) and
docs/mcp.md work as written, Authorization header included, against a
platform that requires tokens (as `make run`'s does): each is taken from
the page, pointed at the test platform's port, and run by bash with
``$TOKEN`` set as the README sets it."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ignite_launcher import LocalPlatform, temporary_platform
from tests.observability.workload import Api
from tests.support import SEED_HANDLER

ROOT = Path(__file__).resolve().parents[1]
ORG, APP = "acme-corp", "greet"


def _commands(page: str, start: str) -> list[str]:
    """The shell commands in ``page`` starting with ``start`` (a command
    continues over lines ending in a backslash; a ``$ `` prompt is dropped)."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if not line.removeprefix("$ ").startswith(start):
                continue
            command = [line.removeprefix("$ ")]
            while command[-1].endswith("\\"):
                i += 1
                command.append(lines[i])
            found.append("\n".join(command))
    return found


@pytest.fixture(scope="module")
def docs_platform() -> Iterator[tuple[LocalPlatform, Api]]:
    with temporary_platform(auth=True) as platform:
        api = Api.sign_in(platform)
        api.call("POST", "/v1/ignite/org", {"name": ORG})
        api.call(
            "POST", f"/v1/ignite/app/{ORG}",
            {"name": APP, "runtime": {"python": {}}, "description": "Greets",
             "inputSchema": '{"type": "object"}', "mcpEnabled": True},
        )  # fmt: skip
        api.save(ORG, APP, SEED_HANDLER)
        api.call("POST", f"/v1/ignite/app/{ORG}/{APP}/draft/publish", {})
        yield platform, api


def _run(platform: LocalPlatform, api: Api, command: str, secs: float = 60) -> str:
    local = command.replace("localhost:8080", f"127.0.0.1:{platform.gateway_port}")
    done = subprocess.run(
        ["bash", "-c", f"timeout {secs} {local}" if "follow=true" in local else local],
        env={"PATH": "/usr/bin:/bin", "TOKEN": api.token},
        capture_output=True,
        text=True,
        timeout=secs + 30,
    )
    return done.stdout


def test_the_streaming_invoke_and_logs_curls_work_as_written(docs_platform) -> None:
    platform, api = docs_platform
    (invoke,) = (c for c in _commands("http-api.md", "curl -N -i") if "/invoke" in c)
    answer = _run(platform, api, invoke)
    assert answer.startswith("HTTP/1.1 200"), answer[:500]
    assert '"greeting": "Hello, Ada!"' in answer
    assert "X-Ignite-Total-Body-Bytes:" in answer

    (logs,) = (c for c in _commands("http-api.md", "curl -N") if "/logs" in c)
    lines = _run(platform, api, logs, secs=3).splitlines()
    assert lines, "the logs curl printed nothing"
    first = json.loads(lines[0])
    assert first["result"]["entry"]["appId"] == f"{ORG}/{APP}"


def test_the_mcp_curls_work_as_written(docs_platform) -> None:
    platform, api = docs_platform
    initialize, call = _commands("mcp.md", "curl -s")
    opened = _run(platform, api, initialize)
    assert opened.startswith("HTTP/1.1 200"), opened[:500]
    session = re.search(r"(?im)^mcp-session-id: (\S+)", opened)
    assert session, opened[:500]
    answer = _run(platform, api, call.replace("$SESSION", session.group(1)))
    assert "Hello, Ada!" in answer, answer[:500]
