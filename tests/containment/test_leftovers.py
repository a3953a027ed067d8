"""A server killed with pods running leaves nothing behind once restarted:
no pod folder, no socket mount, no cgroup, no process."""

from __future__ import annotations

import json
from pathlib import Path

from ignite_launcher import temporary_platform
from ignite_server.containment.cgroups import CGROUP_ROOT
from ignite_server.containment.mounts import mounts_under
from tests.eventually import eventually
from tests.support import deploy_python, invoke, stub_for

ESCAPE = (Path(__file__).resolve().parent / "escape_python.py").read_bytes()


def _pod_cgroups(server_pid: int) -> list[Path]:
    return [
        path
        for controller in ("memory", "pids", "cpu")
        for path in (CGROUP_ROOT / controller).rglob(f"ignite-pods-{server_pid}-*")
    ]


def test_a_killed_server_leaves_nothing_behind_after_restart() -> None:
    with temporary_platform(gateway_port=None) as platform:
        stub = stub_for(platform.grpc_target)
        deploy_python(stub, "acme", "lingering", ESCAPE)
        status, _ = invoke(stub, "acme", "lingering", json.dumps({"do": "linger"}).encode())
        assert status == 200
        pods = Path(platform.state_dir, "pods")
        assert list(pods.iterdir()), "a pod is running"
        old_pid = platform.server.pid
        assert _pod_cgroups(old_pid)

        platform.kill_server()
        # What the dead server left: its pods' folders and socket mounts.
        assert list(pods.iterdir())
        platform.start_server()

        assert not mounts_under(pods)
        assert not list(pods.iterdir())
        eventually(
            lambda: not _pod_cgroups(old_pid), within=5, every=0.1, what="the old cgroups gone"
        )
        # The platform still serves the app (with a fresh pod).
        status, body = invoke(stub, "acme", "lingering", json.dumps({"do": "limits"}).encode())
        assert status == 200 and json.loads(body)["limit"] > 0
