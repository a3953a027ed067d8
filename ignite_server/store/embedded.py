"""A private PostgreSQL cluster for the embedded default.

With no database URL configured, the server runs its own cluster from the
machine's PostgreSQL binaries: ``initdb`` once into ``<state>/postgres/data``,
then ``pg_ctl start`` on every start and ``pg_ctl stop`` on exit. The cluster
listens on a unix socket only (``listen_addresses=''``), in a directory that
pods never see, so user code has no network path to it.

PostgreSQL refuses to run as root. When the server is root (as on the CI
machines) the cluster runs as the unprivileged ``postgres`` user, which owns
the data directory; otherwise it runs as the current user.

A cluster left running by a server that was killed is reused. "Running"
means the pid in ``postmaster.pid`` is a live ``postgres`` process working in
this data directory: not merely a pid that exists, because a killed
postmaster may linger as a zombie (nothing reaps it in some containers) and
its pid may be reused by an unrelated process.

Starting after a crash (``start`` is also how the supervisor restarts a dead
cluster, store/supervisor.py) first clears what a killed postmaster leaves
behind:

- backends that outlived it: most exit by themselves when they notice the
  postmaster is gone, but one busy in a long query does not, and while it
  keeps the old shared memory attached PostgreSQL refuses to start ("pre-
  existing shared memory block is still in use"). They are found by their
  working directory (the data directory) and binary, and SIGKILLed; what
  they had committed is in the WAL, which the new postmaster replays.
- lock files (``postmaster.pid``, the socket's ``.s.PGSQL.*.lock``) whose
  pid still exists but is not our postmaster (a zombie, a reused pid):
  PostgreSQL itself only ignores a lock whose pid is gone, so these are
  removed. A lock whose pid is gone is left to PostgreSQL, which then also
  recycles the old shared memory segment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from ignite_server.domain.errors import Unavailable

log = structlog.get_logger(__name__)

#: The user a root server runs PostgreSQL as (Debian's package creates it).
SERVICE_USER = "postgres"
#: Database and role the server uses inside the cluster.
DATABASE = "ignite"
#: How long backends orphaned by a dead postmaster get to disappear after a
#: SIGKILL (they go at once unless stuck in the kernel).
ORPHAN_EXIT_SECS = 5.0


def _process_state(pid: int) -> str | None:
    """The one-letter state of a process (R, S, Z, ...), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may hold spaces: the state follows the
    # last closing parenthesis.
    fields = stat.rpartition(")")[2].split()
    return fields[0] if fields else None


def _is_cluster_process(pid: int, data_dir: Path) -> bool:
    """A live (not zombie) ``postgres`` process working in ``data_dir``: the
    postmaster and every backend it forked chdir there."""
    state = _process_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return Path(cwd) == data_dir and Path(exe).name == "postgres"


def _lock_pid(lock_file: Path) -> int | None:
    """The pid on the first line of a PostgreSQL lock file."""
    try:
        return int(lock_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


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

    def postmaster_pid(self) -> int | None:
        """The pid the cluster's ``postmaster.pid`` names, if any."""
        return _lock_pid(self.data_dir / "postmaster.pid")

    def is_running(self) -> bool:
        """Whether the cluster's postmaster is alive (a blocking /proc read)."""
        pid = self.postmaster_pid()
        return pid is not None and _is_cluster_process(pid, self.data_dir.resolve())

    def _clear_leftovers(self) -> None:
        """Kill backends of a dead postmaster and remove lock files that would
        keep a new one from starting (see the module docstring). Blocking."""
        data_dir = self.data_dir.resolve()
        orphans = [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _is_cluster_process(int(entry.name), data_dir)
        ]
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if orphans:
            log.warning("postgres.orphans_killed", pids=orphans)
        deadline = time.monotonic() + ORPHAN_EXIT_SECS
        while any(_is_cluster_process(pid, data_dir) for pid in orphans):
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"backends {orphans} of the dead PostgreSQL did not exit",
                    reason="POSTGRES_FAILED",
                )
            time.sleep(0.05)
        for lock_file in (
            self.data_dir / "postmaster.pid",
            *self.socket_dir.glob(".s.PGSQL.*.lock"),
        ):
            holder = _lock_pid(lock_file)
            if holder is not None and _process_state(holder) is not None:
                # The pid exists but (checked above) is no postmaster of ours.
                lock_file.unlink(missing_ok=True)
                log.warning("postgres.stale_lock_removed", file=lock_file.name, pid=holder)

    async def start(self) -> str:
        """Initialise the cluster if new, start it unless running (clearing
        what a dead postmaster left behind first); return the DSN."""
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
        if not await asyncio.to_thread(self.is_running):
            await asyncio.to_thread(self._clear_leftovers)
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
