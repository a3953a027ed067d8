"""Helpers shared by the end-to-end tests: gRPC stubs and error inspection."""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc
from google.rpc import error_details_pb2, status_pb2

from ignite_server.containment import identities
from tests.eventually import eventually

#: Seed 000's handler, the one every test that needs a greeter deploys; what
#: it prints lands in the app's logs.
SEED_HANDLER = b"""import json
from datetime import datetime, timezone

def handler(payload, ctx):
    # The runtime hands you the raw body; decode + parse JSON ourselves.
    try:
        event = json.loads(payload) if payload else {}
    except (TypeError, ValueError):
        event = {}
    name = event.get("name", "world")
    print("greeting", name)
    return {
        "greeting": f"Hello, {name}!",
        "execution_id": ctx.get("execution_id", ""),
        "function_id": ctx.get("function_id", ""),
        "received_at": datetime.now(timezone.utc).isoformat(),
    }
"""


def require_tool(name: str, installed_by: str) -> str:
    """The path of a tool the project installs (``make toolchains`` runs
    ``installed_by``): a test that needs it fails, rather than skips, where
    it is missing, saying how to get it. Only what cannot be had on these
    machines skips (README, "Tests")."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make toolchains` ({installed_by}) installs it")
    return path


def require_memory_cgroup() -> None:
    """Pods' and builds' memory limits need the memory cgroup writable, as
    it is for root on these machines (docs/local-pods.md): a test of those
    limits fails, rather than skips, where it is not."""
    if not os.access("/sys/fs/cgroup/memory", os.W_OK):
        pytest.fail(
            "/sys/fs/cgroup/memory is not writable: run the tests as root on a cgroup v1 "
            "host, as the platform itself runs (docs/local-pods.md)"
        )


def unique_name(prefix: str = "t") -> str:
    """A fresh DNS label, so parallel tests never share an org or app."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def stub_for(target: str) -> compute_grpc.ComputeServiceStub:
    channel = grpc.insecure_channel(
        target,
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ],
    )
    return compute_grpc.ComputeServiceStub(channel)


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo of a failed call, from its google.rpc.Status trailer."""
    for key, value in err.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    return None


def expect_error(call: Callable[..., Any], request: Any) -> tuple[grpc.StatusCode, str]:
    """Call and return (status code, ErrorInfo reason); fail if it succeeds."""
    try:
        call(request)
    except grpc.RpcError as err:
        info = error_info(err)
        return err.code(), info.reason if info else ""  # type: ignore[attr-defined]
    raise AssertionError(f"{call} succeeded but was expected to fail")


def publish_error(
    stub, org: str, name: str, code: compute.CodeSource
) -> tuple[grpc.StatusCode, str]:
    """Save ``code`` as the app's draft and publish it, which must fail:
    (status code, ErrorInfo reason)."""
    stub.SaveDraft(compute.SaveDraftRequest(organization_name=org, app_name=name, code=code))
    publish = compute.PublishDraftRequest(organization_name=org, app_name=name)
    return expect_error(stub.PublishDraft, publish)


def python_source(code: bytes) -> compute.CodeSource:
    return compute.CodeSource(
        compile=compute.CompileSource(runtime={"python": {}}, source_code=code)
    )


def python_archive(archive: bytes) -> compute.CodeSource:
    return compute.CodeSource(
        compile=compute.CompileSource(runtime={"python": {}}, archive=archive)
    )


def deploy_python(stub, org: str, name: str, code: bytes, **settings: Any) -> None:
    """Create, save and publish a Python app in one go."""
    stub.CreateApp(
        compute.CreateAppRequest(
            organization_name=org, name=name, runtime={"python": {}}, **settings
        )
    )
    stub.SaveDraft(
        compute.SaveDraftRequest(organization_name=org, app_name=name, code=python_source(code))
    )
    stub.PublishDraft(compute.PublishDraftRequest(organization_name=org, app_name=name))


def deploy_archive(stub, org: str, name: str, runtime: str, archive: bytes) -> None:
    """Create, save, (for Rust) compile and publish an app shipped as an
    archive, with build-sized deadlines."""
    stub.CreateApp(
        compute.CreateAppRequest(organization_name=org, name=name, runtime={runtime: {}})
    )
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org,
            app_name=name,
            code=compute.CodeSource(
                compile=compute.CompileSource(runtime={runtime: {}}, archive=archive)
            ),
        )
    )
    if runtime == "rust":
        stub.CompileDraft(
            compute.CompileDraftRequest(organization_name=org, app_name=name), timeout=900
        )
    stub.PublishDraft(
        compute.PublishDraftRequest(organization_name=org, app_name=name), timeout=900
    )


def wait_terminal(stub, org: str, ids: list[str], timeout: float = 120.0) -> dict[str, Any]:
    """Poll until every execution is terminal; return them by id."""
    from dodil.ignite.v1 import ignite_common_pb2 as common

    terminal = {
        common.EXECUTION_STATUS_COMPLETED,
        common.EXECUTION_STATUS_FAILED,
        common.EXECUTION_STATUS_TIMEOUT,
        common.EXECUTION_STATUS_CANCELLED,
    }
    done: dict[str, Any] = {}

    def all_done() -> bool:
        for execution_id in ids:
            if execution_id in done:
                continue
            execution = stub.GetExecution(
                compute.GetExecutionRequest(organization_name=org, execution_id=execution_id)
            ).execution
            if execution.status in terminal:
                done[execution_id] = execution
        return len(done) == len(ids)

    eventually(all_done, within=timeout, every=0.2, what=f"{len(ids)} executions finished")
    return done


def read_logs(stub, org: str, **selector: Any) -> list[Any]:
    """Every stored log entry for an app or an execution (no follow)."""
    responses = stub.ReadLogs(
        compute.ReadLogsRequest(organization_name=org, limit=10_000, **selector)
    )
    return [r.entry for r in responses]


class BearerStub:
    """A stub of ``service`` that sends ``authorization: Bearer <token>``."""

    def __init__(self, target: str, stub_class: Any, token: str | None) -> None:
        self._stub = stub_class(
            grpc.insecure_channel(
                target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
            )
        )
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._stub, name)
        return lambda request, **kw: method(request, metadata=self._metadata, **kw)


def tar_gz(files: dict[str, bytes], executable: frozenset[str] = frozenset()) -> bytes:
    """A tar.gz archive holding ``files`` (path → content), those named in
    ``executable`` with mode 0755."""
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name in executable else 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def invoke(stub, org: str, name: str, body: bytes, timeout: float = 120.0) -> tuple[int, bytes]:
    """Invoke an app over gRPC; (the pod's HTTP status, the whole body)."""
    status = 0
    data = b""
    for frame in stub.Invoke(
        compute.InvokeRequest(organization_name=org, app_name=name, body=body), timeout=timeout
    ):
        if frame.HasField("head"):
            status = frame.head.status_code
        elif frame.HasField("chunk"):
            data += frame.chunk.data
    return status, data


def local_invoker(state_dir: Any, **settings: Any) -> Any:
    """An Activator on a LocalBackend of its own (closed with it); ``settings``
    go to the backend, except the activator's queue and activation limits."""
    from ignite_server.backends.local import LocalBackend
    from ignite_server.core.activator import Activator

    invoker_settings = {
        key: settings.pop(key)
        for key in ("queue_depth", "activation_timeout_secs")
        if key in settings
    }
    return Activator(LocalBackend(state_dir, **settings), owns_backend=True, **invoker_settings)


def bcrypt(password: str) -> str:
    """A bcrypt hash for an htpasswd file (the C library's crypt; the lowest
    cost, so logging in stays fast)."""
    libcrypt = ctypes.CDLL("libcrypt.so.1")
    libcrypt.crypt.restype = ctypes.c_char_p
    alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    salt = "$2b$04$" + "".join(secrets.choice(alphabet) for _ in range(22))
    hashed = libcrypt.crypt(password.encode(), salt.encode())
    assert hashed and hashed.startswith(b"$2b$"), "libcrypt has no bcrypt"
    return str(hashed.decode())


def pod_uids(state_dir: Path) -> range:
    """The uids the server (or backend) with ``state_dir`` gives its pods."""
    block = identities.block_of(state_dir)
    assert block is not None, f"{state_dir} has no block of uids"
    return range(block.pods.base, block.pods.base + block.pods.count)


@contextlib.contextmanager
def serve_git(base: Path, port: int) -> Iterator[str]:
    """``git daemon`` serving the bare repositories in ``base`` read-only on
    127.0.0.1:``port``; yields ``git://127.0.0.1:port``."""
    daemon = subprocess.Popen(
        [
            "git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
            f"--port={port}", f"--base-path={base}", str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_listener(port, "git daemon")
        yield f"git://127.0.0.1:{port}"
    finally:
        daemon.terminate()
        daemon.wait(10)


def wait_for_listener(port: int, what: str, secs: float = 10) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + secs
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.05)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Loopback ports the tests' own services (a git daemon, a registry that
#: wants credentials, a package index, sinks) listen on, picked once per
#: test process; the session's platform lets builds and its own fetches
#: reach exactly these (an operator's allow-list names its private
#: registries the same way).
SERVICE_PORTS = tuple(free_port() for _ in range(5))
#: The SERVICE_PORTS a test's Sinks may take. The others: a git daemon (0), a
#: registry that wants credentials (1), and one nothing listens on (2).
SINK_PORTS = SERVICE_PORTS[3:]


def allowed_services(*hosts: str) -> str:
    """``--egress-allow`` for a platform the tests' services (and ``hosts``,
    ``host:port`` of others such as the session's user registry) serve."""
    services = (f"127.0.0.1:{port}" for port in SERVICE_PORTS)
    return ",".join(["default", *services, *(host for host in hosts if host)])


class Sink:
    """A listener on a loopback port of its own that records every byte it
    is sent and answers each request with ``answer`` (by default an HTTP 401
    asking for Basic credentials, so a client holding credentials would send
    them). Used to show that something was *not* sent somewhere. On a
    ``port`` of SINK_PORTS it is one the session's platform may reach."""

    ASK_FOR_CREDENTIALS = (
        b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="sink"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )

    def __init__(self, answer: bytes = ASK_FOR_CREDENTIALS, port: int = 0) -> None:
        import socket
        import threading

        self._answer = answer
        self._server = socket.create_server(("127.0.0.1", port))
        self._server.settimeout(0.2)
        self.port = int(self._server.getsockname()[1])
        self.received: list[bytes] = []
        self.connections = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:

        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(2)
                try:
                    while data := conn.recv(65536):
                        self.received.append(data)
                        if b"\r\n\r\n" in data or b"\n\n" in data:
                            conn.sendall(self._answer)
                except OSError:
                    continue

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self._server.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PlainRegistry:
    """Debian's docker-registry on a loopback port of its own, without
    authentication: what stands for a user's public registry (Docker Hub,
    ghcr.io) in tests. A process of the test's, stopped by ``close``."""

    def __init__(self, root: Any) -> None:
        import shutil
        import socket
        import subprocess
        import time
        from pathlib import Path

        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        self.host = f"127.0.0.1:{port}"
        (root / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
            f"http:\n  addr: {self.host}\n"
        )
        binary = shutil.which("docker-registry") or "docker-registry"
        with (root / "registry.log").open("wb") as out:
            self._process = subprocess.Popen(
                [binary, "serve", str(root / "config.yml")], stdout=out, stderr=out
            )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError((root / "registry.log").read_text()) from None
                time.sleep(0.05)

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)


def push_tiny_image(reference: str, work: Any, content: str | bytes = "tiny") -> str:
    """A FROM-scratch image of one file (holding ``content``) and a server
    of a few KiB on port 8080 (tests/tiny_server.c: what a version needs to
    become ready), built with buildah and pushed over plain HTTP to
    ``reference`` (``host/path:tag``); its digest."""
    import subprocess
    from pathlib import Path

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    store = [
        "--storage-driver",
        "vfs",
        "--root",
        str(work / "root"),
        "--runroot",
        str(work / "run"),
    ]

    def buildah(*args: str) -> str:
        done = subprocess.run(
            ["buildah", *store, *args], capture_output=True, text=True, check=True, timeout=300
        )
        return done.stdout.strip()

    (work / "file").write_bytes(content.encode() if isinstance(content, str) else content)
    server = work / "server"
    subprocess.run(
        ["cc", "-nostdlib", "-static", "-Os", "-s", "-o", str(server),
         str(Path(__file__).with_name("tiny_server.c"))],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    container = buildah("from", "scratch")
    buildah("copy", container, str(work / "file"), "/file")
    buildah("copy", container, str(server), "/server")
    buildah("config", "--cmd", "/server", "--port", "8080", container)
    buildah("commit", "--quiet", container, "tiny")
    buildah(
        "push", "--quiet", "--tls-verify=false", "--digestfile", str(work / "digest"),
        "tiny", f"docker://{reference}",
    )  # fmt: skip
    return (work / "digest").read_text().strip()


class InvokeLoop:
    """Invokes an app over and over on a thread of its own while a test
    changes the app, bounded in count and in time: what each call got,
    by the version that served it (``InvokeHead.version``), and every call
    that failed (an RPC error, or an HTTP 5xx from the pod)."""

    def __init__(
        self,
        stub: Any,
        org: str,
        name: str,
        *,
        body: bytes = b"{}",
        max_calls: int = 50_000,
        max_secs: float = 300.0,
    ) -> None:
        import collections
        import threading

        self._stub, self._org, self._name, self._body = stub, org, name, body
        self._max_calls, self._max_secs = max_calls, max_secs
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        #: Calls answered, by version and HTTP status.
        self.answers: collections.Counter[tuple[int, int]] = collections.Counter()
        #: Calls that got no answer: "STATUS REASON: message".
        self.errors: list[str] = []

    @property
    def calls(self) -> int:
        with self._lock:
            return sum(self.answers.values()) + len(self.errors)

    def served(self, version: int) -> int:
        """Calls ``version`` answered (any status)."""
        with self._lock:
            return sum(n for (v, _), n in self.answers.items() if v == version)

    @property
    def failures(self) -> list[str]:
        """RPC errors and 5xx answers, each said once per kind with its count."""
        with self._lock:
            bad = [f"v{v} HTTP {s} x{n}" for (v, s), n in self.answers.items() if s >= 500]
            return bad + self.errors

    def wait_for(self, calls: int, timeout: float = 60.0) -> None:
        """Return once ``calls`` more calls were made."""
        import time

        goal = self.calls + calls
        deadline = time.monotonic() + timeout
        while self.calls < goal:
            assert time.monotonic() < deadline, f"the loop made {self.calls}, not {goal} calls"
            assert self._thread.is_alive(), "the invoke loop stopped"
            time.sleep(0.05)

    def _run(self) -> None:
        import time

        deadline = time.monotonic() + self._max_secs
        request = compute.InvokeRequest(
            organization_name=self._org, app_name=self._name, body=self._body
        )
        for _ in range(self._max_calls):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            version = status = 0
            try:
                for frame in self._stub.Invoke(request, timeout=60):
                    if frame.HasField("head"):
                        version, status = frame.head.version, frame.head.status_code
            except grpc.RpcError as err:
                info = error_info(err)
                with self._lock:
                    self.errors.append(
                        f"{err.code().name} {info.reason if info else ''}: {err.details()}"  # type: ignore[attr-defined]
                    )
                continue
            with self._lock:
                self.answers[(version, status)] += 1

    def __enter__(self) -> InvokeLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(90)


#: A handler that says which code it is and what its env holds.
MARKED = """import os

def handler(payload, ctx):
    return {"marker": %r, "greeting": os.environ.get("GREETING", "")}
"""
#: Fails every other call it gets (50 %).
HALF_FAILING = b"""import itertools

_calls = itertools.count()

def handler(payload, ctx):
    if next(_calls) % 2:
        raise RuntimeError("every other call fails")
    return {"marker": "half"}
"""


def marked(marker: str) -> bytes:
    return (MARKED % marker).encode()


def served_by(stub: Any, org: str, name: str, **fields: Any) -> tuple[int, Any]:
    """Invoke once (a 200 answer expected): (the version that served, its JSON)."""
    import json

    version, body = 0, b""
    request = compute.InvokeRequest(organization_name=org, app_name=name, body=b"{}", **fields)
    for frame in stub.Invoke(request, timeout=120):
        if frame.HasField("head"):
            assert frame.head.status_code == 200
            version = frame.head.version
        elif frame.HasField("chunk"):
            body += frame.chunk.data
    return version, json.loads(body)


def app_meta(stub: Any, org: str, name: str) -> Any:
    """GetApp's AppMeta."""
    return stub.GetApp(compute.GetAppRequest(organization_name=org, app_name=name)).app


def wait_rollout(stub: Any, org: str, name: str, limit: float = 60.0) -> Any:
    """The app's rollout once it no longer runs (RolloutStatus)."""
    import time

    from dodil.ignite.v1 import ignite_common_pb2 as common

    deadline = time.monotonic() + limit
    while True:
        rollout = app_meta(stub, org, name).rollout
        if rollout.state != common.ROLLOUT_STATE_RUNNING:
            return rollout
        assert time.monotonic() < deadline, f"the rollout is still running: {rollout.decision}"
        time.sleep(0.25)
