"""TLS from the gateway to the gRPC server (--grpc-tls)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aiohttp
import grpc
from aiohttp import web
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc

from ignite_gateway.app import Gateway
from ignite_gateway.config import GatewayConfig
from tests.gateway.fakes import FakeCompute
from tests.support import require_tool


def _self_signed(directory: Path) -> tuple[bytes, bytes]:
    key, cert = directory / "key.pem", directory / "cert.pem"
    argv = [
        require_tool("openssl", "tools/toolchains.sh"),
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=ignite-test", "-addext", "subjectAltName=DNS:ignite-test",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    subprocess.run(
        argv,
        check=True,
        capture_output=True,
    )
    return key.read_bytes(), cert.read_bytes()


async def test_gateway_speaks_tls_to_the_server(tmp_path: Path) -> None:
    key, cert = _self_signed(tmp_path)
    server = grpc.aio.server()
    compute_grpc.add_ComputeServiceServicer_to_server(FakeCompute(), server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    await server.start()
    config = GatewayConfig(
        grpc_target=f"127.0.0.1:{port}",
        grpc_tls=True,
        grpc_ca_file=str(tmp_path / "cert.pem"),
        grpc_server_name="ignite-test",
    )
    runner = web.AppRunner(Gateway(config).application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/v1/ignite/app/acme/greet") as resp,
        ):
            assert resp.status == 200
            assert (await resp.json())["app"]["id"] == "acme/greet"
    finally:
        await runner.cleanup()
        await server.stop(None)
