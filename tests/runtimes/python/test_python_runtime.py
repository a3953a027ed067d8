"""The Python runtime on its own (no sandbox, no platform): the pod
protocol of docs/pod-protocol.md as a runtime process serves it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ignite_server.backends.local.pod_client import http_once
from ignite_server.builds.python import RUNTIME_DIR, RUNTIME_FILE
from tests.eventually import eventually_async

HANDLER = """import asyncio

def handler(payload, ctx):
    kind = payload.decode()
    print("handling", kind)
    if kind == "bytes":
        return b"\\x00\\x01raw"
    if kind == "str":
        return "héllo"
    if kind == "none":
        return None
    if kind == "ctx":
        return ctx
    if kind == "async":
        return later()
    if kind == "boom":
        raise KeyError("missing")
    return {"echo": kind}

async def later():
    await asyncio.sleep(0)
    return {"async": True}
"""


async def _start(tmp_path: Path, env: dict[str, str]) -> tuple[asyncio.subprocess.Process, Path]:
    sock = tmp_path / "pod.sock"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", str(RUNTIME_DIR / RUNTIME_FILE),
        env={"IGNITE_SOCKET": str(sock), **env},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip

    async def serving() -> bool:
        try:
            await http_once(sock, "GET", "/_ignite/health")
        except OSError:  # not bound or not listening yet
            return False
        return True

    await eventually_async(serving, within=5, every=0.01, what="the runtime serving")
    return proc, sock


def _app(tmp_path: Path, source: str) -> Path:
    code = tmp_path / "artifact"
    (code / "app").mkdir(parents=True)
    (code / "deps").mkdir()
    (code / "app" / "handler.py").write_text(source)
    return code


@pytest.fixture
async def loaded(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path]]:
    code = _app(tmp_path, HANDLER)
    proc, sock = await _start(
        tmp_path,
        {
            "IGNITE_CODE_DIR": str(code),
            "IGNITE_FUNCTION_ID": "acme-corp/echo",
            "IGNITE_ORGANIZATION_ID": "acme-corp",
        },
    )
    yield proc, sock
    proc.terminate()
    await proc.wait()


async def _invoke(sock: Path, body: str, execution_id: str = "01EXEC") -> tuple[int, bytes, str]:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    data = body.encode()
    writer.write(
        f"POST / HTTP/1.1\r\nHost: pod\r\nX-Ignite-Execution-Id: {execution_id}\r\n"
        f"Connection: close\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    raw = await reader.read()
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    content_type = next(
        v for k, _, v in (h.partition(": ") for h in lines[1:]) if k == "Content-Type"
    )
    return int(lines[0].split()[1]), payload, content_type


async def test_results_are_encoded_by_type(loaded: tuple[object, Path]) -> None:
    _, sock = loaded
    assert await _invoke(sock, "bytes") == (200, b"\x00\x01raw", "application/octet-stream")
    assert await _invoke(sock, "str") == (
        200,
        "héllo".encode(),
        "text/plain; charset=utf-8",
    )
    assert await _invoke(sock, "none") == (200, b"null", "application/json")
    assert await _invoke(sock, "x") == (200, b'{"echo": "x"}', "application/json")
    assert await _invoke(sock, "async") == (200, b'{"async": true}', "application/json")
    status, body, _ = await _invoke(sock, "ctx", execution_id="01CTX")
    assert status == 200
    assert json.loads(body) == {
        "execution_id": "01CTX",
        "function_id": "acme-corp/echo",
        "organization_id": "acme-corp",
    }


async def test_an_exception_is_a_500_with_the_error_and_serving_goes_on(
    loaded: tuple[object, Path],
) -> None:
    _, sock = loaded
    status, body, content_type = await _invoke(sock, "boom")
    assert (status, content_type) == (500, "application/json")
    assert json.loads(body) == {"error": "KeyError: 'missing'"}
    assert (await _invoke(sock, "x"))[0] == 200


async def test_prints_become_records_tagged_with_the_execution(
    loaded: tuple[asyncio.subprocess.Process, Path],
) -> None:
    proc, sock = loaded
    await _invoke(sock, "x", execution_id="01TAGGED")
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 5)
    assert line.startswith(b"\x1e")
    assert json.loads(line[1:]) == {
        "execution_id": "01TAGGED",
        "stream": "stdout",
        "message": "handling x",
    }


async def test_a_prestarted_runtime_loads_exactly_once(tmp_path: Path) -> None:
    good = _app(tmp_path, HANDLER)
    proc, sock = await _start(tmp_path, {})
    try:
        assert (await http_once(sock, "GET", "/_ignite/health"))[0] == 503
        load = {"code_dir": str(good), "function_id": "o/a", "organization_id": "o", "env": {}}
        assert await http_once(sock, "POST", "/_ignite/load", json.dumps(load).encode()) == (
            200,
            b'{"ok": true}',
        )
        assert (await http_once(sock, "GET", "/_ignite/health"))[0] == 200
        status, _ = await http_once(sock, "POST", "/_ignite/load", json.dumps(load).encode())
        assert status == 409
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_load_error_is_reported(tmp_path: Path) -> None:
    broken = _app(tmp_path, "import not_a_module_anywhere\n")
    proc, sock = await _start(tmp_path, {})
    try:
        load = {"code_dir": str(broken), "function_id": "o/a", "env": {"K": "V"}}
        status, body = await http_once(sock, "POST", "/_ignite/load", json.dumps(load).encode())
        assert status == 500
        assert "No module named 'not_a_module_anywhere'" in json.loads(body)["error"]
    finally:
        proc.terminate()
        await proc.wait()
    assert os.environ.get("K") is None


MAIN_THREAD_HANDLER = """import signal, threading

# Installing a signal handler works on the main thread only: at import...
signal.signal(signal.SIGUSR1, lambda *_: None)

def handler(payload, ctx):
    # ... and in a call.
    try:
        signal.signal(signal.SIGUSR2, lambda *_: None)
        installed = True
    except ValueError:
        installed = False
    return {
        "main": threading.current_thread() is threading.main_thread(),
        "signal": installed,
    }
"""


@pytest.mark.parametrize(("concurrency", "on_main"), [(None, True), ("1", True), ("4", False)])
async def test_the_handler_runs_on_the_main_thread_when_one_request_runs_at_a_time(
    tmp_path: Path, concurrency: str | None, on_main: bool
) -> None:
    code = _app(tmp_path, MAIN_THREAD_HANDLER)
    env = {"IGNITE_CODE_DIR": str(code), "IGNITE_FUNCTION_ID": "o/a"}
    if concurrency:
        env["IGNITE_MAX_CONCURRENCY"] = concurrency
    proc, sock = await _start(tmp_path, env)
    try:
        status, body, _ = await _invoke(sock, "{}")
        assert status == 200, body
        assert json.loads(body) == {"main": on_main, "signal": on_main}
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_prestarted_runtime_imports_and_calls_the_app_on_its_main_thread(
    tmp_path: Path,
) -> None:
    code = _app(tmp_path, MAIN_THREAD_HANDLER)
    proc, sock = await _start(tmp_path, {})
    try:
        load = {"code_dir": str(code), "function_id": "o/a", "max_concurrency": 1, "env": {}}
        status, body = await http_once(sock, "POST", "/_ignite/load", json.dumps(load).encode())
        assert status == 200, body
        for _ in range(3):
            status, body, _ = await _invoke(sock, "{}")
            assert json.loads(body) == {"main": True, "signal": True}
    finally:
        proc.terminate()
        assert await proc.wait() == 0
