"""A server killed with pods running leaves nothing behind once restarted:
no pod folder, no socket mount, no cgroup, no process; and its pods, image
pods included, die with it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher import temporary_platform
from ignite_server.containment.cgroups import CGROUP_ROOT
from ignite_server.containment.mounts import mounts_under
from tests.eventually import eventually
from tests.support import PlainRegistry, deploy_python, invoke, stub_for

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


def _busybox_httpd(registry: str, work: Path) -> str:
    """An image of the host's static busybox serving HTTP on 8080, pushed to
    ``registry``; its reference."""
    busybox = shutil.which("busybox")
    assert busybox, "no busybox: tools/sandbox.sh installs busybox-static"
    store = [
        "--storage-driver",
        "vfs",
        "--root",
        str(work / "root"),
        "--runroot",
        str(work / "run"),
    ]

    def buildah(*args: str) -> str:
        return subprocess.run(
            ["buildah", *store, *args], capture_output=True, text=True, check=True, timeout=300
        ).stdout.strip()

    container = buildah("from", "scratch")
    buildah("copy", container, busybox, "/bin/busybox")
    buildah(
        "config", "--cmd", '["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/"]',
        "--port", "8080", container,
    )  # fmt: skip
    buildah("commit", "--quiet", container, "httpd")
    reference = f"{registry}/tests/httpd:1"
    buildah("push", "--quiet", "--tls-verify=false", "httpd", f"docker://{reference}")
    return reference


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_image_containers_die_with_a_killed_server(tmp_path: Path) -> None:
    """crun and the container's processes are not the server's children in
    the way bubblewrap's are; a SIGKILLed server used to leave them running
    (re-parented to init) until the next start. Now they are gone at once,
    before any restart."""
    registry = PlainRegistry(tmp_path / "registry")
    try:
        image = _busybox_httpd(registry.host, tmp_path / "image")
        args = ("--egress-allow", "127.0.0.1", "--insecure-registries", registry.host)
        with temporary_platform(gateway_port=None, server_args=args) as platform:
            stub = stub_for(platform.grpc_target)
            stub.CreateApp(compute.CreateAppRequest(organization_name="acme", name="httpd"))
            stub.SaveDraft(
                compute.SaveDraftRequest(
                    organization_name="acme",
                    app_name="httpd",
                    code=compute.CodeSource(
                        image=compute.ImageSource(prebuilt={"image_ref": image})
                    ),
                )
            )
            stub.PublishDraft(
                compute.PublishDraftRequest(organization_name="acme", app_name="httpd"),
                timeout=300,
            )
            status, _ = invoke(stub, "acme", "httpd", b"")
            assert 200 <= status < 500
            old_pid = platform.server.pid
            pids = {
                int(pid)
                for base in _pod_cgroups(old_pid)
                for procs in base.rglob("cgroup.procs")
                for pid in procs.read_text().split()
            }
            names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in pids}
            assert {"crun", "busybox"} <= names, names

            platform.kill_server()
            started = time.monotonic()
            while any(_alive(pid) for pid in pids) or _pod_cgroups(old_pid):
                assert time.monotonic() - started < 10, [p for p in pids if _alive(p)]
                time.sleep(0.05)
            print(f"pods gone {time.monotonic() - started:.2f}s after the server was killed")
            platform.start_server()
            status, _ = invoke(stub, "acme", "httpd", b"")
            assert 200 <= status < 500
    finally:
        registry.close()
