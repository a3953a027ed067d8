"""The admin listener of a process: ``/metrics`` in Prometheus' text format,
on an address of its own (``--metrics-listen``, loopback by default), never
on the public listener, so that scraping needs no route through the edge
and the public API exposes nothing about the platform's insides.

It runs on the process's event loop (an aiohttp site), so collectors that
read the process's state see it between two steps of the loop, never
half-changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

METRICS_PATH = "/metrics"


@dataclass
class AdminListener:
    """A started admin listener; ``close`` stops it."""

    runner: web.AppRunner
    address: str

    async def close(self) -> None:
        await self.runner.cleanup()


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (port 0: any free port) as a pair; ValueError if not."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {listen!r}")
    return host.strip("[]") or "localhost", int(port)


async def start_admin_listener(listen: str) -> AdminListener:
    """Serve ``/metrics`` on ``listen``; the address says the bound port."""
    host, port = split_listen(listen)
    app = web.Application()
    app.router.add_get(METRICS_PATH, _metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound = int(address[1])
            break
    return AdminListener(runner, f"{host}:{bound}")
