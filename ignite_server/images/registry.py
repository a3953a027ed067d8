"""The embedded image registry: where image apps' images are kept when no
external registry is configured.

The server runs Debian's ``docker-registry`` (CNCF distribution 2.8) as a
child process listening on loopback only, with its blobs and manifests under
``<state>/registry/data`` and a configuration it writes itself
(``<state>/registry/config.yml``: file-system storage). The platform's
registry authenticates with tokens (``token_auth``: registry_tokens.py and
token_endpoint.py): anything on this machine can reach loopback, so nothing
is readable without credentials, the server alone may push or delete, and
an organization's pull credentials open its own repositories only.
Deletes are enabled for the server's garbage collection
(registry_storage.py), and no blob descriptor cache is configured, so a
blob removed by a collection is never reported present from memory. Plain
HTTP is enough on loopback. A registry with an htpasswd file instead (one
account that may do anything) is what tests use as a user's private
registry, to exercise REGISTRY_AUTH_FAILED.

Supervision differs from the embedded PostgreSQL's (store/supervisor.py),
which has to poll a postmaster that ``pg_ctl`` daemonised: the registry is
this process's own child, so a task simply awaits its exit and starts it
again on the same port, waiting RESTART_BACKOFF_SECS first and doubling the
wait on every start that fails, up to MAX_RESTART_BACKOFF_SECS. Pushes and
pulls during the gap fail and are retried by their callers. The registry is
asked to die with the server (``setpriv --pdeathsig``), so a killed server
leaves no registry holding its port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from ignite_common.task_supervisor import TaskSupervisor
from ignite_server.domain.errors import Unavailable

log = structlog.get_logger(__name__)

#: Debian's package name for distribution's registry binary.
REGISTRY_BINARY = "/usr/bin/docker-registry"
#: The host address it listens on: only this machine may reach it.
LOOPBACK = "127.0.0.1"
#: How long a started registry gets to answer ``GET /v2/``.
READY_TIMEOUT_SECS = 15.0
#: Wait before restarting a registry that died; doubles on every failed
#: start, so a registry that cannot start (a full disk) is not hammered.
RESTART_BACKOFF_SECS = 0.5
MAX_RESTART_BACKOFF_SECS = 10.0


@dataclass(frozen=True)
class TokenAuth:
    """The registry's ``auth.token`` section: who issues the tokens it
    trusts, where clients get them, and the certificate that signs them."""

    realm: str
    service: str
    issuer: str
    certificate: Path


class EmbeddedRegistry:
    """One registry process under ``state_dir/registry``, kept running from
    ``start()`` until ``close()``."""

    def __init__(
        self,
        state_dir: Path,
        *,
        port: int = 0,
        htpasswd: Path | None = None,
        token_auth: TokenAuth | None = None,
    ) -> None:
        self.root = state_dir / "registry"
        self._port = port
        self._htpasswd = htpasswd
        self._token_auth = token_auth
        self._process: asyncio.subprocess.Process | None = None
        #: Watches the process and restarts it when it dies.
        self._tasks = TaskSupervisor("registry")
        #: Restarts after a crash so far (tests and logs).
        self.restarts = 0

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of image references."""
        return f"{LOOPBACK}:{self._port}"

    @property
    def data_dir(self) -> Path:
        """Where the registry keeps blobs and manifests."""
        return self.root / "data"

    @property
    def config_file(self) -> Path:
        return self.root / "config.yml"

    @property
    def url(self) -> str:
        """The registry's base URL (plain HTTP)."""
        return f"http://{self.host}"

    @property
    def pid(self) -> int | None:
        """The running registry's process id."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the registry and return once it answers."""
        if self._port == 0:
            self._port = _free_port()
        await asyncio.to_thread(self._write_config)
        await self._spawn()
        self._tasks.spawn(self._supervise(), name="watch")

    async def close(self) -> None:
        """Stop supervising and stop the registry."""
        await self._tasks.close()
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.info("registry.stopped", host=self.host)

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config: dict[str, object] = {
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir)},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host},
        }
        if self._htpasswd is not None:
            config["auth"] = {"htpasswd": {"realm": "ignite", "path": str(self._htpasswd)}}
        if self._token_auth is not None:
            config["auth"] = {
                "token": {
                    "realm": self._token_auth.realm,
                    "service": self._token_auth.service,
                    "issuer": self._token_auth.issuer,
                    "rootcertbundle": str(self._token_auth.certificate),
                }
            }
        # JSON is YAML: no YAML writer needed.
        self.config_file.write_text(json.dumps(config, indent=2))

    async def _spawn(self) -> None:
        output = await asyncio.to_thread(open, self.root / "registry.log", "ab")
        with output:
            self._process = await asyncio.create_subprocess_exec(
                "/usr/bin/setpriv", "--pdeathsig", "TERM", "--",
                REGISTRY_BINARY, "serve", str(self.config_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                cwd=self.root,
                env={"PATH": "/usr/bin:/bin"},
            )  # fmt: skip
        try:
            await self._wait_ready(self._process)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()
            raise
        log.info("registry.started", host=self.host, pid=self._process.pid)

    async def _wait_ready(self, process: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECS
        while True:
            if process.returncode is not None:
                raise Unavailable(
                    f"the image registry exited with status {process.returncode} at start "
                    f"(see {self.root / 'registry.log'})",
                    reason="REGISTRY_FAILED",
                )
            if await _answers(self.host):
                return
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"the image registry did not answer on {self.host} "
                    f"within {READY_TIMEOUT_SECS:g} s",
                    reason="REGISTRY_FAILED",
                )
            await asyncio.sleep(0.05)

    async def _supervise(self) -> None:
        while True:
            assert self._process is not None
            status = await self._process.wait()
            log.error("registry.died", host=self.host, status=status)
            backoff = RESTART_BACKOFF_SECS
            while True:
                await asyncio.sleep(backoff)
                try:
                    await self._spawn()
                    break
                except Exception as err:  # any failure is retried
                    log.error("registry.restart_failed", error=str(err), retry_in_secs=backoff)
                backoff = min(backoff * 2, MAX_RESTART_BACKOFF_SECS)
            self.restarts += 1
            log.warning("registry.recovered", host=self.host, restarts=self.restarts)


def _free_port() -> int:
    """A loopback port nothing listens on now (kept across restarts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


async def _answers(host: str) -> bool:
    """Whether ``GET /v2/`` gets a registry's answer: 200, or 401 from one
    that demands credentials."""
    address, _, port = host.rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, int(port)), 2)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        status = await asyncio.wait_for(reader.readline(), 2)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return status.split()[1:2] in ([b"200"], [b"401"])
