"""The local backend's sandbox, probed from inside real pods: no network,
no view of the server's files, of other apps' code, or of its environment."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ignite_server.backends.local import LocalBackend
from ignite_server.backends.local.backend import SandboxRequired
from ignite_server.backends.local.pod import LocalPod
from ignite_server.builds.jail import BuildSpace
from ignite_server.builds.python import RUNTIME_DIR, PythonPipeline
from ignite_server.domain.models import Resources, RuntimeKind, RuntimeSpec
from ignite_server.ports.build_pipeline import BuildRequest
from ignite_server.ports.pod_backend import ExitReason, PodSpec

PROBE = r"""import json, os, socket

def attempt(fn):
    try:
        return "ok: " + repr(fn())[:200]
    except Exception as exc:
        return "denied: " + type(exc).__name__

def handler(payload, ctx):
    asks = json.loads(payload)
    def tcp(host, port):
        return lambda: socket.create_connection((host, port), timeout=2).close()
    def write(path):
        return lambda: open(path, "w").write("x")
    return {
        "tcp_host": attempt(tcp("127.0.0.1", asks["port"])),
        "interfaces": sorted(
            line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]
        ),
        "state_dir": attempt(lambda: os.listdir(asks["state_dir"])),
        "state_file": attempt(lambda: open(asks["state_file"]).read()),
        "other_code": attempt(lambda: open(asks["other_code"]).read()),
        "write_code": attempt(write("/code/app/handler.py")),
        "write_tmp": attempt(write("/tmp/scratch")),
        "runtime_parent": attempt(lambda: sorted(os.listdir(asks["runtime_parent"]))),
        "env": dict(os.environ),
        "uid": os.getuid(),
        "secret_file": attempt(lambda: open("/proc/1/environ").read()),
    }
"""

SECRET = "IGNITE_TEST_SERVER_SECRET"


async def _build(space: BuildSpace, root: Path, name: str, source: str) -> Path:
    src = root / f"src-{name}"
    src.mkdir()
    (src / "handler.py").write_text(source)
    out = root / f"artifact-{name}"
    out.mkdir()
    await PythonPipeline(space).build(
        BuildRequest(RuntimeSpec(RuntimeKind.PYTHON), src, out, "sandbox-tests", lambda _: None)
    )
    return out


def _spec(artifact: Path, app: str, env: dict[str, str] | None = None) -> PodSpec:
    return PodSpec(
        app_id=f"acme-corp/{app}",
        version=1,
        artifact_dir=artifact,
        env=env or {},
        resources=Resources(memory_mb=256, cpu_millicores=1000, timeout_secs=10),
        max_concurrency=2,
    )


async def _post(pod: LocalPod, body: bytes) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession(connector=pod.connector()) as session,
        session.post(pod.base_url + "/", data=body) as response,
    ):
        return response.status, await response.read()


@pytest.fixture(scope="module")
async def backend(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalBackend]:
    os.environ[SECRET] = "hunter2"
    state = tmp_path_factory.mktemp("sandbox-state")
    local = LocalBackend(state, sandbox="required", pool_size=1)
    yield local
    await local.close()
    os.environ.pop(SECRET, None)


async def test_sandboxed_code_is_cut_off_from_network_files_and_environment(
    backend: LocalBackend, tmp_path: Path, build_space: BuildSpace
) -> None:
    probe = await _build(build_space, tmp_path, "probe", PROBE)
    other = await _build(build_space, tmp_path, "other", "def handler(p, c):\n    return 'other'\n")
    secret_file = backend.pods_dir.parent / "server-secret.txt"
    secret_file.write_text("do not read")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    other_pod = await backend.start(_spec(other, "other"))
    pod = await backend.start(_spec(probe, "probe", {"GREETING": "hi"}))
    try:
        asks = {
            "port": listener.getsockname()[1],
            "state_dir": str(backend.pods_dir.parent),
            "state_file": str(secret_file),
            "other_code": str(other / "app" / "handler.py"),
            "runtime_parent": str(RUNTIME_DIR.parent),
        }
        status, body = await _post(pod, json.dumps(asks).encode())
        assert status == 200
        seen = json.loads(body)
        assert seen["tcp_host"].startswith("denied")
        assert seen["interfaces"] == ["lo"]  # its own network namespace: loopback only
        assert seen["state_dir"] == "denied: FileNotFoundError"
        assert seen["state_file"] == "denied: FileNotFoundError"
        assert seen["other_code"] == "denied: FileNotFoundError"
        assert seen["write_code"].startswith("denied")
        assert seen["write_tmp"].startswith("ok")
        # Of the server's installation, only the runtime's own files show.
        assert seen["runtime_parent"] == f"ok: {[RUNTIME_DIR.name]!r}"
        assert SECRET not in seen["env"]
        assert seen["env"]["GREETING"] == "hi"
        assert not set(seen["env"]) - {
            "GREETING", "HOME", "TMPDIR", "PATH", "LANG", "PWD", "IGNITE_SOCKET",
            "IGNITE_MAX_CONCURRENCY", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
        }  # fmt: skip
        # A root server's pods each run as an unprivileged uid of their own.
        expected = range(backend._block.pods.base, backend._block.pods.base + 65_536)
        assert seen["uid"] in (expected if os.geteuid() == 0 else [1000])
        assert "hunter2" not in seen["secret_file"]
    finally:
        listener.close()
        await pod.stop(1)
        await other_pod.stop(1)
    assert pod.exit is not None and pod.exit.reason == ExitReason.STOPPED


async def test_production_refuses_unsandboxed_pods_unless_allowed(
    tmp_path: Path, build_space: BuildSpace
) -> None:
    artifact = await _build(build_space, tmp_path, "plain", "def handler(p, c):\n    return 1\n")
    # A production server without a sandbox does not start at all.
    with pytest.raises(SandboxRequired, match="production server needs the pod sandbox"):
        LocalBackend(tmp_path / "a", sandbox="off", production=True)
    allowing = LocalBackend(
        tmp_path / "b", sandbox="off", production=True, allow_unsandboxed=True, pool_size=0
    )
    try:
        pod = await allowing.start(_spec(artifact, "plain"))
        assert await _post(pod, b"") == (200, b"1")
    finally:
        await allowing.close()
