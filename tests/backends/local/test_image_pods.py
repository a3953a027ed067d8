"""Image pods of the local backend, end to end: a real registry
(``docker-registry``), images built and pushed with buildah, fetched and
unpacked by the backend, run by crun. The image's program is a probe
(image_app/main.go) whose endpoints report what the container can do."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog.testing
from aiohttp import web

from ignite_common import local_ca
from ignite_server.backends.local import LocalBackend
from ignite_server.backends.local.edge_forward import Edge as EdgeAddresses
from ignite_server.backends.local.image_pod import ImagePod
from ignite_server.backends.local.oci_runtime import missing_tools
from ignite_server.backends.local.pod_trust import write_trust_dir
from ignite_server.domain.models import Resources
from ignite_server.ports.image_launch import ImageLaunch
from ignite_server.ports.pod_backend import ExitReason, PodSpec, PodStartError
from tests.eventually import eventually

HERE = Path(__file__).parent
TOOLS = ("buildah", "docker-registry", "go")


def test_the_image_tools_are_installed():
    """tools/sandbox.sh installs them; without them every test below would
    fail for a reason that says less."""
    assert os.geteuid() == 0, "image pods need a root server"
    assert not missing_tools()
    assert [t for t in TOOLS if shutil.which(t) is None] == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Registry:
    port: int

    def reference(self, digest: str) -> str:
        return f"127.0.0.1:{self.port}/test/app@{digest}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Debian's docker-registry on a free loopback port."""
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with (root / "registry.log").open("wb") as out:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=out, stderr=out)
    try:

        def listening() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return True
            return False

        eventually(listening, every=0.05, what="the registry listening")
        yield Registry(port)
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass(frozen=True)
class Images:
    #: The probe, HOME=/tmp/app, port 8080.
    probe: ImageLaunch
    #: The probe plus a setuid-root file (/bin/suid) and a device node.
    setuid: ImageLaunch


def _push(registry: Registry, work: Path, name: str, prepare: Any) -> str:
    """Build an image from scratch with ``prepare(buildah, container)`` and
    push it; return its digest."""
    buildah = [
        "buildah", "--storage-driver", "vfs",
        "--root", str(work / "storage"), "--runroot", str(work / "run"),
    ]  # fmt: skip

    def run(*args: str) -> str:
        return subprocess.run(
            [*buildah, *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    container = run("from", "scratch")
    prepare(run, container)
    run(
        "config",
        "--entrypoint",
        '["/server"]',
        "--port",
        "8080",
        "--env",
        "HOME=/tmp/app",
        container,
    )
    run("commit", "--quiet", container, f"test/{name}:1")
    digest_file = work / f"{name}.digest"
    run(
        "push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file),
        f"test/{name}:1", f"docker://127.0.0.1:{registry.port}/test/app:{name}",
    )  # fmt: skip
    return digest_file.read_text().strip()


@pytest.fixture(scope="module")
def images(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Images:
    work = tmp_path_factory.mktemp("images")
    server = work / "server"
    subprocess.run(
        ["go", "build", "-o", str(server), "main.go"],
        cwd=HERE / "image_app",
        env={**os.environ, "CGO_ENABLED": "0", "GO111MODULE": "off"},
        check=True,
    )

    def probe(run: Any, container: str) -> None:
        run("copy", container, str(server), "/server")

    def setuid(run: Any, container: str) -> None:
        probe(run, container)
        mounted = Path(run("mount", container))
        (mounted / "bin").mkdir()
        shutil.copy(server, mounted / "bin" / "suid")
        os.chmod(mounted / "bin" / "suid", 0o6755)
        os.mknod(mounted / "bin" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        run("umount", container)

    def launch(digest: str) -> ImageLaunch:
        return ImageLaunch(
            reference=registry.reference(digest),
            digest=digest,
            port=8080,
            health_path="",
            entrypoint=("/server",),
            env={"HOME": "/tmp/app"},
        )

    return Images(
        probe=launch(_push(registry, work, "probe", probe)),
        setuid=launch(_push(registry, work, "setuid", setuid)),
    )


@dataclass
class Edge:
    port: int
    #: Its TLS listener, with a certificate of a local CA (local_ca.py).
    tls_port: int
    ca: Path
    #: Host headers of the requests it received.
    hosts: list[str]


@pytest.fixture(scope="module")
async def edge(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Edge]:
    """A stand-in for the platform's HTTP edge on host loopback, plain and
    over TLS."""
    certificate = local_ca.ensure(tmp_path_factory.mktemp("tls"), "ignite.localhost")
    seen = Edge(0, 0, certificate.ca_cert, [])

    async def answer(request: web.Request) -> web.Response:
        seen.hosts.append(request.host)
        return web.Response(text=f"edge answered {request.path} over {request.scheme}")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    seen.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    tls_site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await tls_site.start()
    seen.tls_port = tls_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield seen
    await runner.cleanup()


@pytest.fixture(scope="module")
async def backend(
    tmp_path_factory: pytest.TempPathFactory, edge: Edge
) -> AsyncIterator[LocalBackend]:
    state = tmp_path_factory.mktemp("image-state")
    local = LocalBackend(
        state,
        pool_size=0,
        start_timeout_secs=10,
        edge=EdgeAddresses(("127.0.0.1", edge.port), ("127.0.0.1", edge.tls_port)),
        trust_dir=write_trust_dir(edge.ca, state / "pod-trust"),
    )
    yield local
    await local.close()


def _spec(
    tmp_path: Path, image: ImageLaunch, env: dict[str, str] | None = None, memory_mb: int = 128
) -> PodSpec:
    artifact = tmp_path / f"artifact-{time.monotonic_ns()}"
    artifact.mkdir()
    image.write(artifact)
    return PodSpec(
        app_id="acme/web",
        version=3,
        artifact_dir=artifact,
        env=env or {},
        resources=Resources(memory_mb=memory_mb, cpu_millicores=1000, timeout_secs=10),
        max_concurrency=4,
    )


def _app_statuses(pod: ImagePod, name: str) -> list[dict[str, str]]:
    """``/proc/<pid>/status`` of the pod's processes called ``name``."""
    statuses = []
    for pid in pod.cgroup.pids():
        if Path(f"/proc/{pid}/comm").read_text().strip() == name:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            statuses.append(dict(line.split(":\t", 1) for line in lines))
    return statuses


async def _request(
    pod: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(connector=pod.connector()) as session,
        session.request(method, pod.base_url + path, data=body, headers=headers) as response,
    ):
        return response.status, json.loads(await response.read())


async def test_requests_reach_the_app_as_sent(
    backend: LocalBackend, images: Images, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, images.probe, {"GREETING": "hi", "HOME": "/tmp/app"})
    # The first pod of a digest fetches and unpacks the image; the second
    # shows the cold start of a cached one.
    await (await backend.start(spec)).stop(0)
    started = time.monotonic()
    pod = await backend.start(spec)
    status, echo = await _request(
        pod, "PUT", "/some/path?a=1&b=two", b"payload", {"X-Probe": "yes"}
    )
    cold_ms = (time.monotonic() - started) * 1000
    print(f"image pod cold start (cached image): {cold_ms:.0f} ms")
    try:
        assert status == 200
        assert echo["method"] == "PUT"
        assert echo["path"] == "/some/path"
        assert echo["query"] == "a=1&b=two"
        assert echo["headers"]["X-Probe"] == ["yes"]
        assert echo["body"] == "payload"
        _, seen = await _request(pod, "GET", "/env")
        env = seen["env"]
        assert env["PORT"] == "8080"
        assert env["GREETING"] == "hi"
        assert env["HOME"] == "/tmp/app"
        assert env["IGNITE_FUNCTION_ID"] == "acme/web"
        assert env["IGNITE_VERSION"] == "3"
        assert seen["cwd"] == "/"
        # The container's init is the app; it runs as the pod's own uid.
        assert seen["pid"] == 1
        assert seen["uid"] == seen["gid"] == pod.uid != 0
    finally:
        end = await pod.stop(5)
    assert end.reason == ExitReason.STOPPED


async def test_the_container_is_contained(
    backend: LocalBackend, images: Images, registry: Registry, edge: Edge, tmp_path: Path
) -> None:
    env = {"BACKEND": f"http://other-acme.ignite.localhost:{edge.port}"}
    pod = await backend.start(_spec(tmp_path, images.probe, env))
    try:
        assert isinstance(pod, ImagePod)
        # On the host: the pod's uid, no capability, no_new_privs, seccomp.
        statuses = _app_statuses(pod, "server")
        assert statuses
        for status in statuses:
            assert status["Uid"].split() == [str(pod.uid)] * 4
            assert status["Gid"].split() == [str(pod.uid)] * 4
            assert pod.uid != 0
            assert int(status["CapEff"], 16) == 0
            assert int(status["CapBnd"], 16) == 0
            assert status["NoNewPrivs"] == "1"
            assert status["Seccomp"] == "2"

        async def probe(path: str) -> Any:
            status, answer = await _request(pod, "GET", path)
            assert status == 200
            return answer

        assert "read-only file system" in await probe("/write?path=/etc/probe")
        assert await probe("/write?path=/tmp/file") == "ok"
        assert await probe("/write?path=/tmp/app/file") == "ok"
        assert await probe("/chmod?path=/tmp/file&mode=755") == "ok"
        assert await probe("/chmod?path=/tmp/file&mode=4755") == "denied: operation not permitted"
        assert await probe("/chmod?path=/tmp/file&mode=2755") == "denied: operation not permitted"
        assert await probe("/unshare") == "denied: operation not permitted"
        # No network: not the host's loopback (the registry listens there)...
        refused = await probe(f"/connect?addr=127.0.0.1:{registry.port}")
        assert refused.startswith("denied")
        # ... but other apps' URLs lead to the edge.
        fetched = await probe("/fetch?env=BACKEND&path=/api/items")
        assert fetched == {"status": 200, "body": "edge answered /api/items over http"}
        assert edge.hosts[-1] == f"other-acme.ignite.localhost:{edge.port}"
    finally:
        await pod.stop(5)


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_an_app_on_the_port_of_its_backend_url_reaches_the_edge(
    backend: LocalBackend, images: Images, edge: Edge, tmp_path: Path, scheme: str
) -> None:
    """The probe listens on ``:8080`` (every address, IPv4 and IPv6) and its
    backend's URL carries port 8080 too: the app starts and its calls reach
    the edge, over TLS verified against the platform's CA for https."""
    env = {"BACKEND": f"{scheme}://other-acme.ignite.localhost:8080"}
    pod = await backend.start(_spec(tmp_path, images.probe, env))
    try:
        status, fetched = await _request(pod, "GET", "/fetch?env=BACKEND&path=/api/x")
        assert status == 200
        assert fetched == {"status": 200, "body": f"edge answered /api/x over {scheme}"}
        assert edge.hosts[-1] == "other-acme.ignite.localhost:8080"
        _, seen = await _request(pod, "GET", "/env")
        assert seen["env"]["SSL_CERT_FILE"] == "/etc/ignite/tls/ca-bundle.crt"
        assert seen["env"]["NODE_EXTRA_CA_CERTS"] == "/etc/ignite/tls/ca.crt"
    finally:
        await pod.stop(5)


async def test_health_path_decides_readiness(
    backend: LocalBackend, images: Images, tmp_path: Path
) -> None:
    pod = await backend.start(_spec(tmp_path, replace(images.probe, health_path="/healthz")))
    try:
        assert (await _request(pod, "GET", "/env"))[0] == 200
    finally:
        await pod.stop(0)
    quick = LocalBackend(tmp_path / "state", pool_size=0, start_timeout_secs=1)
    try:
        never_healthy = replace(images.probe, health_path="/unhealthy")
        with pytest.raises(PodStartError, match="did not become ready within 1s"):
            await quick.start(_spec(tmp_path, never_healthy))
        # Without a health path, the port must accept connections.
        never_listening = replace(images.probe, cmd=("idle",))
        with pytest.raises(PodStartError, match="listening on port 8080") as failed:
            await quick.start(_spec(tmp_path, never_listening))
        assert "probe: running, never listening" in failed.value.message
    finally:
        await quick.close()


async def test_a_container_that_fails_to_start_says_why(
    backend: LocalBackend, images: Images, tmp_path: Path
) -> None:
    failing = replace(images.probe, cmd=("fail",))
    with pytest.raises(PodStartError) as failed:
        await backend.start(_spec(tmp_path, failing))
    assert "exited with status 3" in failed.value.message
    assert "refusing to start on purpose" in failed.value.message
    with pytest.raises(PodStartError, match="no ENTRYPOINT or CMD"):
        await backend.start(_spec(tmp_path, replace(images.probe, entrypoint=())))
    missing = replace(images.probe, entrypoint=("/no/such/program",))
    with pytest.raises(PodStartError, match="exited before it was ready"):
        await backend.start(_spec(tmp_path, missing))


async def test_memory_limit_kills_the_container_as_out_of_memory(
    backend: LocalBackend, images: Images, tmp_path: Path
) -> None:
    pod = await backend.start(_spec(tmp_path, images.probe, memory_mb=64))
    with pytest.raises(aiohttp.ClientError):
        await _request(pod, "GET", "/alloc?mb=256")
    end = await asyncio.wait_for(pod.wait(), 10)
    assert end.reason == ExitReason.OUT_OF_MEMORY


async def test_setuid_bits_and_devices_never_reach_the_host(
    backend: LocalBackend, images: Images, tmp_path: Path
) -> None:
    pod = await backend.start(_spec(tmp_path, images.setuid))
    try:
        status, seen = await _request(pod, "GET", "/stat?path=/bin/suid")
        assert status == 200
        assert seen["mode"] & 0o7777 == 0o755
        rootfs = backend._images.path(images.setuid.digest)
        assert stat.S_IMODE((rootfs / "bin" / "suid").stat().st_mode) == 0o755
        assert not (rootfs / "bin" / "null").exists()
        assert stat.S_IMODE(rootfs.parent.parent.stat().st_mode) == 0o700
    finally:
        await pod.stop(0)


async def test_concurrent_starts_of_one_digest_share_one_unpack(
    images: Images, tmp_path: Path
) -> None:
    fresh = LocalBackend(tmp_path / "state", pool_size=0)
    try:
        with structlog.testing.capture_logs() as logs:
            pods = await asyncio.gather(
                *(fresh.start(_spec(tmp_path, images.probe)) for _ in range(3))
            )
        assert [entry["event"] for entry in logs].count("image unpacked") == 1
        for pod in pods:
            assert (await _request(pod, "GET", "/env"))[0] == 200
        assert [p.name for p in (tmp_path / "state" / "images").iterdir()] == [
            images.probe.digest.removeprefix("sha256:")
        ]
    finally:
        await fresh.close()
