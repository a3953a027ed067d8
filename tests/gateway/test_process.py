"""The `ignite-gateway` process as an operator runs it: flags, port file,
readiness, access log, graceful shutdown."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from ignite_gateway.config import parse_args
from tests.eventually import eventually_async
from tests.gateway.fakes import start_fake_server


async def _start_gateway(
    tmp_path: Path, grpc_target: str
) -> tuple[asyncio.subprocess.Process, str]:
    port_file = tmp_path / "port"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ignite_gateway",
        "--listen",
        "127.0.0.1:0",
        "--port-file",
        str(port_file),
        "--grpc-target",
        grpc_target,
        "--shutdown-grace",
        "10",
        "--log-format",
        "json",
        # Its /metrics listener too: the default port may be a running
        # platform's (`make run` on the same machine).
        "--metrics-listen",
        "127.0.0.1:0",
        stderr=asyncio.subprocess.PIPE,
    )

    def port_written() -> bool:
        assert process.returncode is None, "the gateway exited"
        return port_file.exists()

    try:
        await eventually_async(port_written, within=10, what="the gateway's port file")
    except AssertionError:
        process.kill()
        raise
    return process, f"http://127.0.0.1:{port_file.read_text().strip()}"


@pytest_asyncio.fixture
async def fake_target() -> AsyncIterator[str]:
    server, _, _, target = await start_fake_server()
    yield target
    await server.stop(None)


def test_flags_and_environment() -> None:
    config = parse_args(
        ["--listen", "0.0.0.0:9000", "--grpc-tls", "--apps-domain", "Apps.Example.COM."],
        env={"IGNITE_GATEWAY_GRPC_TARGET": "rpc.example.com:443"},
    )
    assert (config.host, config.port) == ("0.0.0.0", 9000)
    assert config.grpc_target == "rpc.example.com:443"
    assert config.grpc_tls is True
    assert config.apps_domain == "apps.example.com"
    defaults = parse_args([], env={})
    assert (defaults.host, defaults.port) == ("localhost", 8080)
    assert defaults.apps_domain == "ignite.localhost"
    assert defaults.grpc_target == "localhost:50051"
    with pytest.raises(SystemExit):
        parse_args(["--listen", "nonsense"], env={})


async def test_readiness_follows_the_server(tmp_path: Path) -> None:
    server, _, health_servicer, target = await start_fake_server()
    process, url = await _start_gateway(tmp_path, target)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/readyz") as resp:
                assert resp.status == 200
            from grpc_health.v1 import health_pb2

            await health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
            async with session.get(f"{url}/readyz") as resp:
                assert resp.status == 503
                assert (await resp.json())["status"] == "NOT_SERVING"
            await server.stop(None)
            async with session.get(f"{url}/readyz") as resp:
                assert resp.status == 503
            # Liveness is about this process only.
            async with session.get(f"{url}/healthz") as resp:
                assert resp.status == 200
            # The server being down is a 503 with the usual error body.
            async with session.get(f"{url}/v1/ignite/app/acme/greet") as resp:
                assert resp.status == 503
                body = await resp.json()
            assert body["error"]["status"] == "UNAVAILABLE"
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()


async def test_sigterm_finishes_streams_in_flight(tmp_path: Path, fake_target: str) -> None:
    process, url = await _start_gateway(tmp_path, fake_target)
    envelope = {"http": {"path": "/"}, "body": base64.b64encode(b"").decode()}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{url}/v1/ignite/app/acme/slow/invoke",
            json=envelope,
            headers={"Authorization": "Bearer s3cret-token"},
        ) as resp:
            assert resp.status == 201
            first = await resp.content.readexactly(6)
            # The stream is half way (1.2 s in all): stop the gateway now.
            process.send_signal(signal.SIGTERM)
            rest = await resp.content.read()
        assert first + rest == b"first;second;"
        # Once stopped, nothing listens any more.
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"{url}/healthz"):
                pass
    assert process.stderr is not None
    log = await process.stderr.read()
    assert b"s3cret-token" not in log  # tokens never reach the log
    lines = [json.loads(line) for line in log.splitlines()]
    access = [line for line in lines if line.get("event") == "http.request"]
    assert access and access[-1]["status"] == 201
    assert access[-1]["bytes"] > 13 and access[-1]["duration_ms"] >= 400
    assert access[-1]["rpc"] == "dodil.ignite.v1.ComputeService.Invoke"
    assert len(access[-1]["request_id"]) == 26
    assert any(line.get("event") == "gateway.stopped" for line in lines)


async def test_sigterm_ends_follow_streams_at_once(tmp_path: Path, fake_target: str) -> None:
    process, url = await _start_gateway(tmp_path, fake_target)
    async with aiohttp.ClientSession() as session:
        # limit=1: the fake's follow stream would stay quiet for 30 s.
        async with session.get(f"{url}/v1/ignite/app/acme/greet/logs?follow=true&limit=1") as resp:
            assert resp.status == 200
            await resp.content.readline()
            started = asyncio.get_running_loop().time()
            process.send_signal(signal.SIGTERM)
            lines = (await resp.read()).splitlines()
        # Well within the 10 s grace: an open-ended stream is not waited for.
        assert asyncio.get_running_loop().time() - started < 5
    assert json.loads(lines[-1])["error"]["status"] == "UNAVAILABLE"
    assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_gateway_reconnects_after_a_server_restart(tmp_path: Path) -> None:
    server, _, _, target = await start_fake_server()
    process, url = await _start_gateway(tmp_path, target)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/v1/ignite/app/acme/greet") as resp:
                assert resp.status == 200
            await server.stop(None)
            async with session.get(f"{url}/v1/ignite/app/acme/greet") as resp:
                assert resp.status == 503
            server, _, _, _ = await start_fake_server(int(target.rsplit(":", 1)[1]))

            async def answers() -> bool:
                async with session.get(f"{url}/v1/ignite/app/acme/greet") as resp:
                    return resp.status == 200

            await eventually_async(answers, within=8, every=0.1, what="reconnected")
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
        await server.stop(None)
