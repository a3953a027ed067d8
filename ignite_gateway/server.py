"""The gateway process: serve one :class:`~ignite_gateway.app.Gateway` until
told to stop.

Start: listen, write the bound port to ``--port-file`` when asked, log where.
Stop (SIGTERM, SIGINT or the ``stop`` event): /readyz turns 503, the
listening socket closes, requests and streams in flight get
``shutdown_grace_s`` to finish, then the rest are cancelled and the gRPC
channel is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl

import structlog
from aiohttp import web

from ignite_common import tracing
from ignite_common.admin_http import METRICS_PATH, start_admin_listener
from ignite_gateway.app import Gateway
from ignite_gateway.config import GatewayConfig

_log = structlog.get_logger("ignite_gateway")


async def serve(config: GatewayConfig, stop: asyncio.Event | None = None) -> None:
    """Run the gateway until ``stop`` is set (or SIGTERM/SIGINT arrives),
    then stop as the module docstring says."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    tracing.configure("ignite-gateway", config.otlp_endpoint)
    gateway = Gateway(config)
    runner = web.AppRunner(
        gateway.application(),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=config.shutdown_grace_s,
        # A client that hangs up cancels its handler, which cancels its
        # gRPC call (a `follow` log stream must not outlive its reader).
        handler_cancellation=True,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = _bound_port(runner)
    tls_address = ""
    if config.tls_listen:
        tls_host, _, tls_port = config.tls_listen.rpartition(":")
        tls_site = web.TCPSite(
            runner, tls_host.strip("[]") or "0.0.0.0", int(tls_port), ssl_context=_tls(config)
        )
        await tls_site.start()
        tls_address = tls_site.name
    admin = await start_admin_listener(config.metrics_listen)
    if config.port_file:
        _write_port_file(config.port_file, port)
    _log.info(
        "gateway.listening",
        address=f"http://{config.host}:{port}",
        tls_address=tls_address or None,
        grpc_target=config.grpc_target,
        apps_domain=config.apps_domain,
        routes=len(gateway.routes),
        metrics=f"http://{admin.address}{METRICS_PATH}",
    )
    try:
        await stop.wait()
    finally:
        gateway.drain()
        _log.info("gateway.stopping", grace_s=config.shutdown_grace_s)
        await runner.cleanup()
        await admin.close()
        tracing.shutdown()
        _log.info("gateway.stopped")


def _tls(config: GatewayConfig) -> ssl.SSLContext:
    """The TLS listener's server context: its certificate, TLS 1.2 and up,
    HTTP/1.1 (what the plain listener speaks)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the gateway is not listening on a TCP port")


def _write_port_file(path: str, port: int) -> None:
    # Write then rename, so a reader never sees a half-written number.
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        handle.write(f"{port}\n")
    os.replace(temporary, path)
