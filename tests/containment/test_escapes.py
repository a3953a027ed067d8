"""Apps that try to get out of their pods, deployed through the API: every
attempt is refused or contained, in the Python runtime and in Go.

What each must show: no setuid/setgid bit can be set anywhere a pod writes
(and none exists under the state folder afterwards); the pod's processes are
never host root and hold no capability; new user namespaces (``unshare
-r``), mounts and ``ptrace`` are refused; every writable place stops at its
cap while the host's disk does not grow.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from tests.eventually import eventually
from tests.support import deploy_archive, deploy_python, invoke, pod_uids, tar_gz, unique_name

HERE = Path(__file__).resolve().parent
PYTHON_ESCAPE = (HERE / "escape_python.py").read_bytes()
GO_ESCAPE = (HERE / "escape_go.go").read_bytes()
ROOT = os.geteuid() == 0
#: Every place a pod may write (the escape apps list the same ones).
PLACES = ("/dev/shm", "/run/ignite", "/tmp")
#: Their caps for a SMALL (256 MB) pod, in MiB: /tmp is half the memory.
CAPS = {"/dev/shm": 16, "/run/ignite": 0, "/tmp": 128}


def _ask(stub: Any, org: str, app: str, request: dict[str, Any]) -> dict[str, Any]:
    status, body = invoke(stub, org, app, json.dumps(request).encode())
    assert status == 200, body[:2000]
    return json.loads(body)


@pytest.fixture(scope="module")
def apps(stub: Any) -> dict[str, tuple[str, str]]:
    """The escape app in each runtime: runtime → (organization, app)."""
    org = unique_name("org")
    deploy_python(stub, org, "escape-py", PYTHON_ESCAPE)
    deploy_archive(
        stub,
        org,
        "escape-go",
        "go",
        tar_gz({"main.go": GO_ESCAPE, "go.mod": b"module escape\n\ngo 1.26\n"}),
    )
    return {"python": (org, "escape-py"), "go": (org, "escape-go")}


def _on_disk_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` that live on its own file
    system (a pod's tmpfs, mounted below, is not the host's disk)."""
    device = folder.stat().st_dev
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(root, d)).st_dev == device]
        for name in files:
            info = os.lstat(os.path.join(root, name))
            if info.st_dev == device and stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


@pytest.mark.parametrize("runtime", ["python", "go"])
def test_escapes_are_refused(platform: Any, stub: Any, apps: Any, runtime: str) -> None:
    org, app = apps[runtime]
    seen = _ask(stub, org, app, {"do": "escape"})

    if ROOT:
        # Each pod runs as an unprivileged uid of its own, in no extra group.
        assert seen["uid"] in pod_uids(platform.state_dir) and seen["gid"] == seen["uid"]
    assert seen["uid"] != 0
    if runtime == "python":
        assert seen["groups"] == ([] if ROOT else seen["groups"])
        status = seen["status"]
        assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == "0000000000000000"
        assert status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2"  # a filter is loaded
        assert seen["unshare -U"] != "exit 0"

    for place in PLACES:
        for how in (
            "chmod u+s",
            "chmod g+s",
            "create u+s",
            *(("fchmod u+s",) * (runtime == "python")),
        ):
            assert seen[f"{how} {place}"] == "refused: EPERM", (how, place, seen)
        assert int(seen[f"mode {place}"], 8) & 0o6000 == 0
    for call in ("unshare user", "unshare mount", "mount", "ptrace", "setuid 0"):
        assert seen[call] == "refused: EPERM", (call, seen)
    # `unshare -r` (map me to root in a new user namespace) fails.
    assert not seen["unshare -r"].startswith("exit 0"), seen["unshare -r"]

    # On the host: no setuid or setgid file anywhere under the state folder,
    # and what pods wrote there is not root's.
    for root, _, files in os.walk(platform.state_dir):
        for name in files:
            info = os.lstat(os.path.join(root, name))
            assert not info.st_mode & (stat.S_ISUID | stat.S_ISGID), os.path.join(root, name)
    for written in Path(platform.state_dir, "pods").glob("*/run/*"):
        assert written.lstat().st_uid != 0, written


@pytest.mark.parametrize("runtime", ["python", "go"])
def test_every_writable_place_stops_at_its_cap(
    platform: Any, stub: Any, apps: Any, runtime: str
) -> None:
    org, app = apps[runtime]
    before = _on_disk_bytes(Path(platform.state_dir))
    filled = _ask(stub, org, app, {"do": "fill", "mb": 300})
    after = _on_disk_bytes(Path(platform.state_dir))
    for place in PLACES:
        outcome = filled[place]
        assert outcome.startswith("ENOSPC after "), (place, outcome)
        stopped_at = int(outcome.split()[2])
        assert stopped_at <= CAPS[place], (place, outcome)
    # 300 MiB were tried in each place; the host's disk took none of it.
    assert after - before < 16 * 1024 * 1024
    # Every folder the host keeps for pods is a capped nosuid, nodev tmpfs;
    # the socket folders (run/) are noexec too. (Image pods' /tmp is one of
    # these folders and, like every pod's /tmp, may hold programs.)
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    pods = str(Path(platform.state_dir, "pods").resolve())
    pod_mounts = [line for line in mounts if f" {pods}/" in line]
    if ROOT:
        assert any(line.split()[4].endswith("/run") for line in pod_mounts)
        for line in pod_mounts:
            options, _, fs = line.partition(" - ")
            assert fs.startswith("tmpfs "), line
            assert "size=" in fs, line
            assert "nosuid" in options and "nodev" in options, line
            if line.split()[4].endswith("/run"):
                assert "noexec" in options, line


def _host_processes(marker: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_pod_processes_are_never_host_root(platform: Any, stub: Any, apps: Any) -> None:
    org, app = apps["python"]
    assert _ask(stub, org, app, {"do": "linger"}) == {"started": True}
    pids = eventually(
        lambda: _host_processes(b"sleep\x003600.123"),
        every=0.05,
        what="the pod's process on the host",
    )
    for pid in pids:
        # The lingering process, and every ancestor up to the sandbox's own
        # supervisor: unprivileged, no capability.
        chain = pid
        while True:
            status = _status(chain)
            if status["Name"] == "bwrap":
                # bubblewrap's supervisor keeps uid 0 but no capability.
                assert status["CapEff"] == "0000000000000000", status
                break
            real, effective, saved, fs = map(int, status["Uid"].split())
            assert 0 not in (real, effective, saved, fs), status
            if ROOT:
                assert real in pod_uids(platform.state_dir)
            assert status["CapEff"] == "0000000000000000"
            chain = int(status["PPid"])
        os.kill(pid, 9)


def test_a_local_directory_in_requirements_is_refused_at_save(stub: Any, org: str) -> None:
    import grpc

    from tests.support import python_archive

    name = "evil-reqs"
    stub.CreateApp(
        compute.CreateAppRequest(organization_name=org, name=name, runtime={"python": {}})
    )
    archive = tar_gz(
        {
            "handler.py": b"def handler(payload, ctx):\n    return 'ok'\n",
            "requirements.txt": b"# build the local project\nsix==1.16.0\n./evil\n",
            "evil/pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\n',
            "evil/backend.py": b"import os\nos.system('touch /tmp/pwned')\n",
        }
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.SaveDraft(
            compute.SaveDraftRequest(
                organization_name=org, app_name=name, code=python_archive(archive)
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    from tests.support import error_info

    info = error_info(caught.value)
    assert info is not None and info.reason == "REQUIREMENT_NOT_ALLOWED"
    assert info.metadata["line"] == "3"
    assert "line 3" in (caught.value.details() or "") and "./evil" in (caught.value.details() or "")
    # Nothing was stored: the app still has no draft code.
    app = stub.GetApp(compute.GetAppRequest(organization_name=org, app_name=name)).app
    assert app.active_version == 0
