"""`make run` / ``python -m ignite_launcher``: the platform on fixed local
ports (gRPC localhost:50051, HTTP localhost:8080, HTTPS localhost:8443,
/metrics of server and gateway on localhost:9464 and :9465, or
IGNITE_GRPC_PORT, IGNITE_HTTP_PORT, IGNITE_HTTPS_PORT, IGNITE_METRICS_PORT
and IGNITE_GATEWAY_METRICS_PORT), state in ./.state
(IGNITE_STATE_DIR), until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from ignite_launcher.banner import banner, sandbox_line
from ignite_launcher.cli_login import log_cli_in
from ignite_launcher.platform import LocalPlatform


def main() -> None:
    """`make run`: the platform on fixed local ports until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Run the local Ignite platform.")
    env = os.environ.get
    parser.add_argument("--state-dir", type=Path, default=Path(env("IGNITE_STATE_DIR", ".state")))
    parser.add_argument("--grpc-port", type=int, default=int(env("IGNITE_GRPC_PORT", "50051")))
    parser.add_argument("--http-port", type=int, default=int(env("IGNITE_HTTP_PORT", "8080")))
    parser.add_argument("--https-port", type=int, default=int(env("IGNITE_HTTPS_PORT", "8443")))
    parser.add_argument("--metrics-port", type=int, default=int(env("IGNITE_METRICS_PORT", "9464")))
    parser.add_argument(
        "--gateway-metrics-port",
        type=int,
        default=int(env("IGNITE_GATEWAY_METRICS_PORT", "9465")),
    )
    args = parser.parse_args()
    state = args.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)
    platform = LocalPlatform(
        state,
        grpc_listen=f"localhost:{args.grpc_port}",
        gateway_port=args.http_port,
        log_dir=None,
        auth=True,
        metrics_ports=(args.metrics_port, args.gateway_metrics_port),
        https_port=args.https_port,
    )
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    platform.start()
    signed_in = log_cli_in(platform)
    print(sandbox_line(), flush=True)
    print(banner(platform, signed_in=signed_in), flush=True)
    try:
        while not stop:
            for name, proc in (("server", platform.server), ("gateway", platform.gateway)):
                if proc is not None and proc.poll() is not None:
                    print(f"ignite-{name} exited; see {platform.log_dir}", file=sys.stderr)
                    stop = True
            time.sleep(0.5)
    finally:
        platform.stop()


if __name__ == "__main__":
    main()
