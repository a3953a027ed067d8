"""Large request bodies take turns at the gateway: with one turn, twelve
concurrent 3 MiB invocations are all served, never two bodies held at once,
while small requests pass without waiting."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from ignite_gateway.app import Gateway
from ignite_gateway.config import GatewayConfig
from tests.gateway.fakes import start_fake_server

APPS_DOMAIN = "apps.test"


async def test_large_bodies_are_held_one_turn_at_a_time():
    server, _, _, target = await start_fake_server()
    config = GatewayConfig(
        host="127.0.0.1", port=0, grpc_target=target, apps_domain=APPS_DOMAIN, max_large_bodies=1
    )
    gateway = Gateway(config)
    runner = web.AppRunner(gateway.application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    peak = 0
    watching = True

    async def watch() -> None:
        nonlocal peak
        while watching:
            peak = max(peak, gateway.bodies.holding)
            await asyncio.sleep(0.0005)

    watcher = asyncio.create_task(watch())
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/"
            host = {"Host": f"greet-acme-corp.{APPS_DOMAIN}"}
            large = b"x" * (3 * 1024 * 1024)

            async def post(body: bytes) -> int:
                async with session.post(url, data=body, headers=host) as response:
                    await response.read()
                    return response.status

            statuses = await asyncio.gather(
                *(post(large) for _ in range(12)), *(post(b"small") for _ in range(12))
            )
    finally:
        watching = False
        await watcher
        await runner.cleanup()
        await server.stop(None)
    print(
        f"\n24 concurrent requests, 12 of 3 MiB: statuses {set(statuses)}, peak turns held {peak}"
    )
    assert set(statuses) == {201}
    assert peak == 1
    assert gateway.bodies.holding == 0
