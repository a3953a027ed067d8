"""LocalPlatform: the whole platform as real processes on this machine.

Starts ``ignite-server`` (which starts its embedded PostgreSQL when no
database URL is given) and ``ignite-gateway`` as child processes, waits until
both serve, and stops them on exit. `make run`, the end-to-end tests and the
benchmarks all use it, so they exercise exactly what a user runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType

from ignite_common import local_ca
from ignite_launcher.state import private_state_dir

#: How long a cold start of the server may take (initdb on a first start).
START_TIMEOUT_SECS = 90


def free_port() -> int:
    """A port nothing listens on right now (for the gateway's --listen)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPlatform:
    """Server + gateway as subprocesses; use as a context manager."""

    def __init__(
        self,
        state_dir: Path,
        *,
        grpc_listen: str = "127.0.0.1:0",
        gateway_port: int | None = 0,
        apps_domain: str = "ignite.localhost",
        database_url: str = "",
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        server_args: tuple[str, ...] = (),
        gateway_args: tuple[str, ...] = (),
        auth: bool = False,
        metrics_ports: tuple[int, int] | None = None,
        https_port: int | None = 0,
    ) -> None:
        self.state_dir = state_dir
        self.grpc_listen = grpc_listen
        self.gateway_port = free_port() if gateway_port == 0 else gateway_port
        #: The gateway's TLS listener (app hosts' https:// URLs), signed by
        #: the state folder's own CA (ignite_common/local_ca.py); None: none.
        self.https_port = (
            None
            if gateway_port is None or https_port is None
            else free_port()
            if https_port == 0
            else https_port
        )
        self.apps_domain = apps_domain
        self.database_url = database_url
        self.env = {**os.environ, **(env or {})}
        self.log_dir = log_dir or state_dir / "logs"
        self.server_args = server_args
        self.gateway_args = gateway_args
        self.auth = auth
        self.server: subprocess.Popen[bytes] | None = None
        self.gateway: subprocess.Popen[bytes] | None = None
        self.grpc_target = ""
        #: Admin listeners (/metrics) of server and gateway, on loopback:
        #: the given ports, else free ones (tests run many platforms at once).
        self.server_metrics_port, self.gateway_metrics_port = metrics_ports or (
            free_port(),
            free_port(),
        )

    # --- addresses ------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ca_file(self) -> Path:
        """The platform's CA certificate, which signed the edge's."""
        return self.state_dir / "tls" / "ca.crt"

    def _edge_certificate(self) -> local_ca.EdgeCertificate:
        return local_ca.ensure(self.state_dir / "tls", self.apps_domain)

    @property
    def server_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.server_metrics_port}/metrics"

    @property
    def gateway_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_metrics_port}/metrics"

    def admin_credentials(self) -> tuple[str, str]:
        """The platform admin's client id and secret, written at first start."""
        data = json.loads((self.state_dir / "admin-credentials.json").read_text())
        return data["client_id"], data["client_secret"]

    def app_host(self, organization: str, app: str) -> str:
        """The Host header of an app's direct URL."""
        return f"{app}-{organization}.{self.apps_domain}"

    # --- processes ------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (owned by the child)
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )

    def start_server(self) -> None:
        ready = self.state_dir / "server.ready.json"
        ready.unlink(missing_ok=True)
        port = self.grpc_target.rsplit(":", 1)[1] if self.grpc_target else None
        listen = f"127.0.0.1:{port}" if port else self.grpc_listen
        argv = [
            sys.executable, "-m", "ignite_server",
            "--state-dir", str(self.state_dir),
            "--listen", listen,
            "--ready-file", str(ready),
            "--apps-domain", self.apps_domain,
            "--apps-url-port", str(self.gateway_port or 80),
            "--apps-edge", f"127.0.0.1:{self.gateway_port or 80}",
            "--shutdown-grace", "5",
            "--auth", "required" if self.auth else "off",
            "--metrics-listen", f"127.0.0.1:{self.server_metrics_port}",
        ]  # fmt: skip
        if self.https_port is not None:
            certificate = self._edge_certificate()
            argv += [
                "--apps-edge-tls", f"127.0.0.1:{self.https_port}",
                "--apps-ca-file", str(certificate.ca_cert),
            ]  # fmt: skip
        argv += self.server_args
        if self.database_url:
            argv += ["--database-url", self.database_url]
        self.server = self._spawn("server", argv)
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while not ready.exists():
            if self.server.poll() is not None:
                raise RuntimeError(f"ignite-server exited; see {self.log_dir / 'server.log'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"ignite-server did not start; see {self.log_dir}")
            time.sleep(0.05)
        answer = json.loads(ready.read_text())
        self.grpc_target = answer["grpc"]
        #: host:port of the registry image apps' images are kept in ("" when
        #: this machine cannot run image apps).
        self.registry: str = answer.get("registry", "")

    def start_gateway(self) -> None:
        if self.gateway_port is None:
            return
        argv = [
            sys.executable, "-m", "ignite_gateway",
            "--listen", f"127.0.0.1:{self.gateway_port}",
            "--grpc-target", self.grpc_target,
            "--apps-domain", self.apps_domain,
            "--metrics-listen", f"127.0.0.1:{self.gateway_metrics_port}",
            "--server-metrics-url", self.server_metrics_url,
        ]  # fmt: skip
        if self.https_port is not None:
            certificate = self._edge_certificate()
            argv += [
                "--tls-listen", f"127.0.0.1:{self.https_port}",
                "--tls-cert", str(certificate.cert),
                "--tls-key", str(certificate.key),
            ]  # fmt: skip
        argv += self.gateway_args
        self.gateway = self._spawn("gateway", argv)
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while True:
            if self.gateway.poll() is not None:
                raise RuntimeError(f"ignite-gateway exited; see {self.log_dir / 'gateway.log'}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.http_url}/healthz", timeout=1) as resp,
            ):
                if resp.status == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"ignite-gateway did not start; see {self.log_dir}")
            time.sleep(0.05)

    def start(self) -> LocalPlatform:
        self.start_server()
        try:
            self.start_gateway()
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def kill_server(self) -> None:
        """SIGKILL the server (a crash); its PostgreSQL and pods survive it."""
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
            self.server.wait()

    def restart_server(self) -> None:
        self._terminate(self.server)
        self.start_server()

    def stop(self) -> None:
        self._terminate(self.gateway)
        self._terminate(self.server)
        if self.database_url == "":
            # A killed server leaves its cluster running; stop it here.
            self._stop_orphaned_postgres()

    def _stop_orphaned_postgres(self) -> None:
        pid_file = self.state_dir / "postgres" / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)

    def __enter__(self) -> LocalPlatform:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def temporary_platform(**kwargs: object) -> Iterator[LocalPlatform]:
    """A platform in a fresh state directory (tests, benchmarks)."""
    with LocalPlatform(private_state_dir(), **kwargs) as platform:  # type: ignore[arg-type]
        yield platform
