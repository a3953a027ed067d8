"""The embedded cluster starts after a crash whatever the dead postmaster
left: a lock file naming a pid that now belongs to another process, and
backends that outlived it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from ignite_launcher import private_state_dir
from ignite_server.store.embedded import EmbeddedPostgres, _find_binary
from tests.eventually import eventually


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedPostgres]:
    cluster = EmbeddedPostgres(private_state_dir("ignite-pg-") / "postgres")
    asyncio.run(cluster.start())
    yield cluster
    asyncio.run(cluster.stop())


def _kill_postmaster(cluster: EmbeddedPostgres) -> int:
    pid = cluster.postmaster_pid()
    assert pid is not None and cluster.is_running()
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: not cluster.is_running(), every=0.05, what="the postmaster gone")
    return pid


def _query(cluster: EmbeddedPostgres, sql: str) -> str:
    user = "postgres" if os.geteuid() == 0 else None
    argv = [_find_binary("psql"), "-h", str(cluster.socket_dir), "-d", "ignite", "-tAc", sql]
    if user:
        argv[1:1] = ["-U", user]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def test_a_lock_file_naming_someone_elses_pid_is_cleared(cluster):
    _query(cluster, "CREATE TABLE IF NOT EXISTS kept (n int); INSERT INTO kept VALUES (1)")
    _kill_postmaster(cluster)
    # The dead postmaster's pid now "belongs" to a live process that is not
    # PostgreSQL: PostgreSQL alone would refuse to start ("lock file exists").
    squatter = subprocess.Popen(["sleep", "60"])
    try:
        for lock in (
            cluster.data_dir / "postmaster.pid",
            *cluster.socket_dir.glob(".s.PGSQL.*.lock"),
        ):
            if lock.exists():
                lines = lock.read_text().split("\n")
                lock.write_text("\n".join([str(squatter.pid), *lines[1:]]))
        asyncio.run(cluster.start())
        assert cluster.is_running()
        assert cluster.postmaster_pid() != squatter.pid
        assert squatter.poll() is None  # an unrelated process is left alone
    finally:
        squatter.kill()
        squatter.wait()
    assert _query(cluster, "SELECT count(*) FROM kept") == "1"


def test_an_orphaned_busy_backend_is_killed_before_the_restart(cluster):
    _query(
        cluster, "CREATE TABLE IF NOT EXISTS committed (n int); INSERT INTO committed VALUES (1)"
    )
    psql = [_find_binary("psql"), "-h", str(cluster.socket_dir), "-d", "ignite"]
    if os.geteuid() == 0:
        psql += ["-U", "postgres"]
    busy = subprocess.Popen(
        [*psql, "-c", "SET statement_timeout = '60s'", "-c", "DO $$ BEGIN LOOP END LOOP; END $$"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    eventually(
        lambda: _query(
            cluster, "SELECT pid FROM pg_stat_activity WHERE query LIKE 'DO $$ BEGIN LOOP%'"
        ),
        within=20,
        every=0.1,
        what="the busy backend running",
    )
    _kill_postmaster(cluster)
    asyncio.run(cluster.start())
    assert cluster.is_running()
    busy.wait(30)
    assert _query(cluster, "SELECT count(*) FROM committed") == "1"
