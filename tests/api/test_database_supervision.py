"""The server supervises its embedded PostgreSQL: a postmaster killed with
SIGKILL during a stream of invocations is restarted, health reads
NOT_SERVING meanwhile, and afterwards invocations and async executions work
again with every committed row still there.

The platform is this module's own: its database gets killed. A busy backend
(an endless PL/pgSQL loop, which never notices its postmaster is gone) is
running at the kill, so the restart has to clear an orphan that still holds
the old shared memory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ignite_launcher import LocalPlatform, private_state_dir
from ignite_server.store.embedded import EmbeddedPostgres, _find_binary
from tests.eventually import eventually
from tests.support import deploy_python, error_info, stub_for, unique_name, wait_terminal

ECHO = b"""
import time
def handler(payload, ctx):
    if payload.startswith(b"sleep:"):
        time.sleep(float(payload[6:]))
    return b"echo:" + payload
"""

#: The issue's promise: the database is back within this after a kill.
BACK_WITHIN_SECS = 10.0
#: Health must notice a dead postmaster within this (it polls every 0.5 s).
NOTICED_WITHIN_SECS = 3.0

#: A statement that never waits, so never notices its postmaster has died.
BUSY = "BEGIN LOOP END LOOP; END"

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def supervised() -> Iterator[LocalPlatform]:
    with LocalPlatform(
        private_state_dir("ignite-dbsup-"),
        gateway_port=None,
        # A short lease: executions cut short by the outage are taken over soon.
        server_args=("--execution-lease-secs", "2"),
    ) as platform:
        yield platform


def _cluster(platform: LocalPlatform) -> EmbeddedPostgres:
    return EmbeddedPostgres(platform.state_dir / "postgres")


def _invoke(stub, org: str, app: str, body: bytes) -> bytes:
    frames = stub.Invoke(
        compute.InvokeRequest(organization_name=org, app_name=app, body=body), timeout=30
    )
    head, data = None, b""
    for frame in frames:
        if frame.HasField("head"):
            head = frame.head
        elif frame.HasField("chunk"):
            data += frame.chunk.data
    assert head is not None and head.status_code == 200, (head, data)
    return data


class _Watch:
    """Background loops that record what a client sees over time: a stream
    of invocations, and the server's health."""

    def __init__(self, platform: LocalPlatform, org: str, app: str) -> None:
        self.stub = stub_for(platform.grpc_target)
        self.health = health_pb2_grpc.HealthStub(grpc.insecure_channel(platform.grpc_target))
        self.org, self.app = org, app
        self.invokes: list[tuple[float, str, str]] = []  # (time, code name, reason)
        self.states: list[tuple[float, int]] = []  # (time, serving status or -1)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._invoking, daemon=True),
            threading.Thread(target=self._checking, daemon=True),
        ]

    def __enter__(self) -> _Watch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _invoking(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            body = f"n{n}".encode()
            try:
                assert _invoke(self.stub, self.org, self.app, body) == b"echo:" + body
                self.invokes.append((time.monotonic(), "OK", ""))
            except grpc.RpcError as err:
                info = error_info(err)
                reason = info.reason if info else ""
                self.invokes.append((time.monotonic(), err.code().name, reason))  # type: ignore[attr-defined]
            time.sleep(0.02)

    def _checking(self) -> None:
        while not self._stop.is_set():
            try:
                status = self.health.Check(health_pb2.HealthCheckRequest(), timeout=2).status
            except grpc.RpcError:
                status = -1
            self.states.append((time.monotonic(), status))
            time.sleep(0.1)


def _busy_backend(cluster: EmbeddedPostgres) -> tuple[subprocess.Popen[bytes], int]:
    """A session stuck in a CPU loop (bounded by a statement timeout, in case
    nothing kills it) and its backend's pid."""
    psql = [_find_binary("psql"), "-h", str(cluster.socket_dir), "-U", "postgres", "-d", "ignite"]
    loop = subprocess.Popen(
        [*psql, "-q", "-c", "SET statement_timeout = '60s'", "-c", f"DO $$ {BUSY} $$"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    query = (
        f"SELECT pid FROM pg_stat_activity WHERE query LIKE '%{BUSY}%' AND pid <> pg_backend_pid()"
    )

    def busy_backends() -> list[str]:
        return subprocess.run(
            [*psql, "-tAc", query], capture_output=True, text=True, check=True
        ).stdout.split()

    found = eventually(busy_backends, within=20, every=0.1, what="the busy backend running")
    return loop, int(found[0])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _stored(stub, org: str, apps: list[str], execution_ids: list[str]) -> tuple:
    """Every committed row the test made: apps, their versions, executions."""
    listed = stub.ListApps(compute.ListAppsRequest(organization_name=org, page_size=500)).apps
    versions = {
        app: [
            (v.version, v.status, v.code_hash)
            for v in stub.ListVersions(
                compute.ListVersionsRequest(organization_name=org, app_name=app)
            ).versions
        ]
        for app in apps
    }
    executions = []
    for execution_id in execution_ids:
        execution = stub.GetExecution(
            compute.GetExecutionRequest(organization_name=org, execution_id=execution_id)
        ).execution
        executions.append((execution.id, execution.status, execution.result))
    return (
        sorted((a.name, a.active_version, a.description) for a in listed),
        versions,
        executions,
    )


def _first(states: list[tuple[float, int]], after: float, status: int) -> float | None:
    return next((t for t, s in states if t >= after and s == status), None)


def _async(stub, org: str, app: str, body: bytes) -> str:
    return stub.InvokeAsync(
        compute.InvokeAsyncRequest(organization_name=org, app_name=app, body=body)
    ).execution_id


def test_killed_postgres_is_restarted_and_nothing_committed_is_lost(supervised):
    stub = stub_for(supervised.grpc_target)
    cluster = _cluster(supervised)
    org = unique_name("org")
    apps = ["echo", "second", "third"]
    deploy_python(stub, org, "echo", ECHO, description="kept")
    deploy_python(stub, org, "second", ECHO)
    deploy_python(stub, org, "third", ECHO)
    # A second version, and a rollback-free history: v1 SUPERSEDED, v2 ACTIVE.
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org,
            app_name="second",
            code=compute.CodeSource(
                compile=compute.CompileSource(
                    runtime={"python": {}}, source_code=ECHO + b"\n# v2\n"
                )
            ),
        )
    )
    stub.PublishDraft(compute.PublishDraftRequest(organization_name=org, app_name="second"))
    finished = [_async(stub, org, "echo", f"done{i}".encode()) for i in range(5)]
    wait_terminal(stub, org, finished)
    before = _stored(stub, org, apps, finished)
    assert before[1]["second"][0][1] == common.VERSION_STATUS_ACTIVE

    for round_ in range(2):  # twice: supervision carries on after a restart
        with _Watch(supervised, org, "echo") as watch:
            time.sleep(1.0)  # a stream is going, healthy
            assert watch.invokes and all(code == "OK" for _, code, _ in watch.invokes)
            # Executions in flight at the kill (running, and waiting for a worker).
            in_flight = [_async(stub, org, "second", b"sleep:1") for _ in range(6)]
            time.sleep(0.3)
            psql, orphan = _busy_backend(cluster)
            postmaster = cluster.postmaster_pid()
            assert postmaster is not None and _alive(postmaster)

            killed_at = time.monotonic()
            os.kill(postmaster, signal.SIGKILL)

            def back(killed_at: float = killed_at) -> bool:
                try:
                    stub.GetApp(compute.GetAppRequest(organization_name=org, app_name="echo"))
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
                        raise  # a wrong answer, not one to wait out
                    return False
                return time.monotonic() > killed_at + 1.0  # surely after the kill

            eventually(
                back,
                within=killed_at + BACK_WITHIN_SECS - time.monotonic(),
                every=0.1,
                what=f"round {round_}: the database back",
            )

            # Let the stream run on for a while once health is back.
            def outage(killed_at: float = killed_at) -> tuple[float, float] | None:
                down_at = _first(watch.states, killed_at, NOT_SERVING)
                up_at = _first(watch.states, down_at, SERVING) if down_at else None
                if up_at is not None and any(t > up_at + 1.0 for t, *_ in watch.invokes):
                    return down_at, up_at
                return None

            down_at, up_at = eventually(
                outage,
                within=killed_at + 30 - time.monotonic(),
                every=0.1,
                what="health and invocations back",
            )
        psql.wait(30)

        assert down_at - killed_at < NOTICED_WITHIN_SECS
        assert up_at - killed_at < BACK_WITHIN_SECS
        assert not _alive(orphan), "the dead postmaster's busy backend still runs"
        new_postmaster = cluster.postmaster_pid()
        assert new_postmaster not in (None, postmaster) and _alive(new_postmaster)

        # During the outage callers saw UNAVAILABLE / DATABASE_DOWN, never
        # INTERNAL; once back, every invocation succeeds.
        failures = {(code, reason) for _, code, reason in watch.invokes if code != "OK"}
        assert failures <= {("UNAVAILABLE", "DATABASE_DOWN")}, failures
        after = [code for t, code, _ in watch.invokes if t > up_at + 0.5]
        assert after and set(after) == {"OK"}, after

        # Async executions: the ones in flight at the kill finish, new ones too.
        fresh = [_async(stub, org, "echo", f"after{round_}-{i}".encode()) for i in range(5)]
        done = wait_terminal(stub, org, in_flight + fresh, timeout=120)
        assert {e.status for e in done.values()} == {common.EXECUTION_STATUS_COMPLETED}
        assert [done[i].result for i in fresh] == [
            f"echo:after{round_}-{i}".encode() for i in range(5)
        ]
        assert all(done[i].result == b"echo:sleep:1" for i in in_flight)

        # Nothing committed before the kill is lost.
        assert _stored(stub, org, apps, finished) == before
