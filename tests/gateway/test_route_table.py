"""The gateway's special routes are router entries, and /mcp stands apart
from the process that assembles it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ignite_gateway.app import Gateway
from ignite_gateway.config import GatewayConfig

ROOT = Path(__file__).resolve().parents[2]
MCP_PACKAGE = ROOT / "ignite_gateway" / "mcp"

APPS_DOMAIN = "apps.test"


def _gateway() -> Gateway:
    # Nothing listens at the target: these tests never reach the server.
    return Gateway(GatewayConfig(grpc_target="127.0.0.1:9", apps_domain=APPS_DOMAIN))


def _registered(app: web.Application) -> set[tuple[str, str]]:
    return {(route.method, route.resource.canonical) for route in app.router.routes()}


def test_special_routes_are_registered_in_the_router() -> None:
    gateway = _gateway()
    app = gateway.application()
    registered = _registered(app)
    assert {
        ("*", "/healthz"),
        ("*", "/readyz"),
        ("GET", "/openapi.json"),
        ("HEAD", "/openapi.json"),
        ("*", "/mcp"),
        ("POST", "/v1/ignite/token"),
        ("GET", "/v1/ignite/jwks"),
        ("*", "/{tail}"),
    } <= registered
    # App URLs are routed by Host, ahead of every path.
    assert gateway.apps.route_by_host in app.middlewares


async def test_an_app_host_wins_over_the_paths() -> None:
    client = TestClient(TestServer(_gateway().application()))
    await client.start_server()
    try:
        # A preflight for an app's host is answered by the app relay, even
        # on a path the gateway itself serves for other hosts.
        preflight = {
            "Host": f"greet-acme.{APPS_DOMAIN}",
            "Origin": "https://page.example",
            "Access-Control-Request-Method": "POST",
        }
        async with client.options("/healthz", headers=preflight) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "https://page.example"
        async with client.get("/healthz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok"}
    finally:
        await client.close()


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_mcp_does_not_import_the_gateway_server() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted(MCP_PACKAGE.rglob("*.py"))
        for name in _imported_modules(path)
        if name in ("ignite_gateway.server", "ignite_gateway.app")
    }
    assert not offenders, offenders
    # And at run time, in a fresh interpreter: importing /mcp loads neither.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, ignite_gateway.mcp; "
            "print(sorted(m for m in sys.modules if m in "
            "('ignite_gateway.server', 'ignite_gateway.app')))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
