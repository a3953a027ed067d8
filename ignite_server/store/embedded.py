"""A private PostgreSQL cluster for the embedded default.

With no database URL configured, the server runs its own cluster from the
machine's PostgreSQL binaries: ``initdb`` once into ``<state>/postgres/data``,
then ``pg_ctl start`` on every start and ``pg_ctl stop`` on exit. The cluster
listens on a unix socket only (``listen_addresses=''``), in a directory that
pods never see, so user code has no network path to it.

PostgreSQL refuses to run as root. When the server is root (as on the CI
machines) the cluster runs as the unprivileged ``postgres`` user, which owns
the data directory; otherwise it runs as the current user.

A cluster left running by a server that was killed is reused: ``pg_ctl
status`` says so and start-up carries on with it.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

import structlog

from ignite_server.core.errors import Unavailable

log = structlog.get_logger(__name__)

#: The user a root server runs PostgreSQL as (Debian's package creates it).
SERVICE_USER = "postgres"
#: Database and role the server uses inside the cluster.
DATABASE = "ignite"


def _find_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps the server binaries off PATH, one directory per major.
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        candidate = root / name
        if candidate.exists():
            return str(candidate)
    raise Unavailable(
        f"PostgreSQL's {name} was not found; install PostgreSQL or set a database URL",
        reason="POSTGRES_NOT_INSTALLED",
    )


@dataclass
class EmbeddedPostgres:
    """Owns one cluster under ``root``; ``start()`` returns its DSN."""

    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    def _user(self) -> pwd.struct_passwd | None:
        """The account to run PostgreSQL as, or None for the current user."""
        if os.geteuid() != 0:
            return None
        return pwd.getpwnam(SERVICE_USER)

    def dsn(self) -> str:
        user = self._user()
        role = user.pw_name if user else pwd.getpwuid(os.geteuid()).pw_name
        return f"postgresql://{role}@/{DATABASE}?host={self.socket_dir}"

    async def _run(self, *argv: str, check: bool = True) -> tuple[int, str]:
        user = self._user()
        if user is not None:
            uid, gid = user.pw_uid, user.pw_gid

            def demote() -> None:
                os.setgid(gid)
                os.setuid(uid)

            preexec = demote
        else:
            preexec = None
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=preexec,
            env=env,
            cwd="/",
        )
        out, _ = await proc.communicate()
        text = out.decode(errors="replace")
        if check and proc.returncode != 0:
            raise Unavailable(
                f"{Path(argv[0]).name} failed: {text.strip()[-2000:]}",
                reason="POSTGRES_FAILED",
            )
        return proc.returncode or 0, text

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        user = self._user()
        if user is not None:
            for path in (self.root, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        # Only the cluster's owner (and root) may reach the socket.
        os.chmod(self.root, 0o700)
        os.chmod(self.socket_dir, 0o700)

    async def start(self) -> str:
        """Initialise the cluster if new, start it unless running; return the DSN."""
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            log.info("postgres.initdb", data_dir=str(self.data_dir))
            await self._run(
                _find_binary("initdb"),
                "-D", str(self.data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )  # fmt: skip
        pg_ctl = _find_binary("pg_ctl")
        status, _ = await self._run(pg_ctl, "status", "-D", str(self.data_dir), check=False)
        if status != 0:
            options = (
                f"-c listen_addresses='' -k {self.socket_dir} "
                "-c max_connections=200 -c fsync=on -c shared_buffers=64MB"
            )
            await self._run(
                pg_ctl, "start", "-w", "-t", "60",
                "-D", str(self.data_dir),
                "-l", str(self.root / "postgres.log"),
                "-o", options,
            )  # fmt: skip
            log.info("postgres.started", socket_dir=str(self.socket_dir))
        else:
            log.info("postgres.reused", socket_dir=str(self.socket_dir))
        await self._ensure_database()
        return self.dsn()

    async def _ensure_database(self) -> None:
        _, out = await self._run(
            _find_binary("psql"),
            "-h", str(self.socket_dir), "-d", "postgres", "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",
        )  # fmt: skip
        if out.strip() != "1":
            await self._run(_find_binary("createdb"), "-h", str(self.socket_dir), DATABASE)

    async def stop(self) -> None:
        """Stop the cluster, letting in-flight transactions finish quickly."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        await self._run(
            _find_binary("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data_dir),
            check=False,
        )  # fmt: skip
        log.info("postgres.stopped")
