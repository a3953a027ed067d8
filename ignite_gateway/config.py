"""Gateway settings, from command-line flags with environment fallbacks."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Largest request payload an app receives: the invocation body limit.
MAX_PAYLOAD_BYTES = 32 * 1024 * 1024

#: Largest JSON body of an API call: a MAX_PAYLOAD_BYTES body in base64
#: (4 characters per 3 bytes) plus 1 MiB for the rest of the envelope.
MAX_JSON_BODY_BYTES = 4 * -(-MAX_PAYLOAD_BYTES // 3) + 1024 * 1024

#: gRPC message size limit both ways; above the JSON limit so that any body
#: the HTTP edge accepts also fits one gRPC message.
MAX_GRPC_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway process needs to know."""

    #: Host to listen on.
    host: str = "localhost"
    #: Port to listen on; 0 picks a free one (see ``port_file``).
    port: int = 8080
    #: gRPC address of the Ignite server.
    grpc_target: str = "localhost:50051"
    #: Apps are served at ``<app>-<org>.<apps_domain>``.
    apps_domain: str = "ignite.localhost"
    #: Use TLS to reach the gRPC server.
    grpc_tls: bool = False
    #: PEM file of CA certificates for the server (default: system roots).
    grpc_ca_file: str | None = None
    #: Name to verify the server's certificate against, when it differs
    #: from the target's host.
    grpc_server_name: str | None = None
    #: Deadline of a unary API call, seconds.
    rpc_timeout_s: float = 60.0
    #: Deadline of an invocation; long, since a cold start is held, not
    #: refused.
    invoke_timeout_s: float = 900.0
    #: On SIGTERM, how long requests and streams in flight may take to finish.
    shutdown_grace_s: float = 30.0
    #: When set, the bound port is written here once the gateway serves.
    port_file: str | None = None
    #: "console" (key=value) or "json" log lines.
    log_format: str = "console"
    #: The admin listener serving /metrics; off the public listener.
    metrics_listen: str = "localhost:9465"
    #: OTLP/gRPC collector traces go to; empty: no tracing.
    otlp_endpoint: str = ""
    #: The server's /metrics URL, read for the console's charts; empty: none.
    server_metrics_url: str = ""
    #: How often the console's chart data is read from it, seconds.
    console_scrape_s: float = 10.0
    #: Request bodies over 1 MiB handled at once (request_body.py).
    max_large_bodies: int = 4


def _env_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def parse_args(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Flags win over ``IGNITE_GATEWAY_*`` variables, which win over defaults."""
    env = os.environ if env is None else env
    defaults = GatewayConfig()
    parser = argparse.ArgumentParser(
        prog="ignite-gateway",
        description="HTTP/JSON edge of Ignite: the ComputeService API, direct app URLs, "
        "OpenAPI, translated to gRPC calls on the Ignite server.",
    )
    parser.add_argument(
        "--listen",
        default=env.get("IGNITE_GATEWAY_LISTEN", f"{defaults.host}:{defaults.port}"),
        help="host:port to serve HTTP on (env IGNITE_GATEWAY_LISTEN; port 0 = any free port)",
    )
    parser.add_argument(
        "--grpc-target",
        default=env.get("IGNITE_GATEWAY_GRPC_TARGET", defaults.grpc_target),
        help="gRPC address of ignite-server (env IGNITE_GATEWAY_GRPC_TARGET)",
    )
    parser.add_argument(
        "--apps-domain",
        default=env.get("IGNITE_APPS_DOMAIN", defaults.apps_domain),
        help="apps answer at <app>-<org>.<domain> (env IGNITE_APPS_DOMAIN)",
    )
    parser.add_argument(
        "--grpc-tls",
        action=argparse.BooleanOptionalAction,
        default=_env_bool(env.get("IGNITE_GATEWAY_GRPC_TLS")),
        help="use TLS to the gRPC server (env IGNITE_GATEWAY_GRPC_TLS=1)",
    )
    parser.add_argument(
        "--grpc-ca-file",
        default=env.get("IGNITE_GATEWAY_GRPC_CA_FILE"),
        help="PEM CA bundle for the server's certificate (env IGNITE_GATEWAY_GRPC_CA_FILE)",
    )
    parser.add_argument(
        "--grpc-server-name",
        default=env.get("IGNITE_GATEWAY_GRPC_SERVER_NAME"),
        help="TLS name to verify, when not the target's host (env IGNITE_GATEWAY_GRPC_SERVER_NAME)",
    )
    parser.add_argument(
        "--rpc-timeout",
        type=float,
        default=float(env.get("IGNITE_GATEWAY_RPC_TIMEOUT", defaults.rpc_timeout_s)),
        help="deadline of unary calls, seconds",
    )
    parser.add_argument(
        "--invoke-timeout",
        type=float,
        default=float(env.get("IGNITE_GATEWAY_INVOKE_TIMEOUT", defaults.invoke_timeout_s)),
        help="deadline of invocations (cold starts included), seconds",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=float(env.get("IGNITE_GATEWAY_SHUTDOWN_GRACE", defaults.shutdown_grace_s)),
        help="seconds in-flight requests may take to finish on SIGTERM",
    )
    parser.add_argument(
        "--port-file",
        default=env.get("IGNITE_GATEWAY_PORT_FILE"),
        help="write the bound port to this file once serving",
    )
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=env.get("IGNITE_LOG_FORMAT", defaults.log_format),
        help="log line format (env IGNITE_LOG_FORMAT)",
    )
    parser.add_argument(
        "--metrics-listen",
        default=env.get("IGNITE_GATEWAY_METRICS_LISTEN", defaults.metrics_listen),
        help="host:port of the admin listener serving /metrics (port 0 = any free port)",
    )
    parser.add_argument(
        "--otlp-endpoint",
        default=env.get("IGNITE_OTLP_ENDPOINT", defaults.otlp_endpoint),
        help="send traces to this OTLP/gRPC collector (host:port); empty: no tracing",
    )
    parser.add_argument(
        "--server-metrics-url",
        default=env.get("IGNITE_GATEWAY_SERVER_METRICS_URL", defaults.server_metrics_url),
        help="the server's /metrics URL, read for the console's charts",
    )
    parser.add_argument(
        "--console-scrape-interval",
        type=float,
        default=float(env.get("IGNITE_GATEWAY_CONSOLE_SCRAPE_INTERVAL", defaults.console_scrape_s)),
        help="seconds between two reads of the server's metrics for the console",
    )
    parser.add_argument(
        "--max-large-bodies",
        type=int,
        default=int(env.get("IGNITE_GATEWAY_MAX_LARGE_BODIES", defaults.max_large_bodies)),
        help="request bodies over 1 MiB read and sent at once; others wait (default 4)",
    )
    args = parser.parse_args(argv)
    if args.max_large_bodies < 1:
        parser.error("--max-large-bodies must be at least 1")
    host, port = _split_listen(parser, args.listen)
    return GatewayConfig(
        host=host,
        port=port,
        grpc_target=args.grpc_target,
        apps_domain=args.apps_domain.strip(".").lower(),
        grpc_tls=args.grpc_tls,
        grpc_ca_file=args.grpc_ca_file,
        grpc_server_name=args.grpc_server_name,
        rpc_timeout_s=args.rpc_timeout,
        invoke_timeout_s=args.invoke_timeout,
        shutdown_grace_s=args.shutdown_grace,
        port_file=args.port_file,
        log_format=args.log_format,
        metrics_listen=args.metrics_listen,
        otlp_endpoint=args.otlp_endpoint,
        server_metrics_url=args.server_metrics_url,
        console_scrape_s=args.console_scrape_interval,
        max_large_bodies=args.max_large_bodies,
    )


def _split_listen(parser: argparse.ArgumentParser, listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        parser.error(f"--listen must be host:port, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)
