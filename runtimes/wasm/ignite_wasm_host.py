"""Ignite's Wasmtime host: serves a Rust app built for wasm32-wasip2.

Usage: ``python -S -B ignite_wasm_host.py APP.wasm`` with the ``wasmtime``
package on PYTHONPATH (the launch manifest written by
ignite_server/builds/rust_wasm.py says so). It implements docs/pod-protocol.md
with the standard library and ``wasmtime`` only, since it runs inside the
pod's sandbox where nothing of the platform is importable.

``ignite_wasm_host.py --precompile APP.wasm APP.cwasm`` is the build step:
it compiles the component to native code ahead of time. A pod loads
``APP.cwasm`` beside ``APP.wasm`` when there is one that this Wasmtime
accepts (same version and settings), which takes a millisecond instead of
the few hundred a compile takes on every cold start; else it compiles
``APP.wasm`` itself. The component is ready before the socket is created, so
a healthy pod answers at once. Every invocation then gets a fresh instance in a fresh
Store: WASI stdin is one JSON invocation envelope, ``/tmp`` an empty
directory of its own, the environment the pod's. The SDK's WASI entry point
(runtimes/rust/ignite/src/wasm.rs) answers with a response envelope as the
last line of stdout. Nothing survives between invocations, so a trap (a
panic aborts on wasm) costs that one request a ``500`` and the pod keeps
serving.

Output the app writes (stderr, and stdout lines before the envelope) is
written to the pod's stdout as tagged log records carrying the execution id.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from socketserver import TCPServer, ThreadingMixIn, UnixStreamServer
from typing import Any

import wasmtime
from wasmtime import component

#: Grace for in-flight requests after SIGTERM; the platform SIGKILLs later.
SHUTDOWN_GRACE_SECS = 30.0
#: Prefix of a tagged log record (docs/pod-protocol.md).
RECORD_SEPARATOR = "\x1e"
#: The interface a WASI command exports (any 0.2.x version).
RUN_INTERFACE = "wasi:cli/run@0.2"
#: Environment variables of the host itself, not of the app.
HOST_ENV_PREFIX = "PYTHON"


class App:
    """The compiled component and how to run it once."""

    def __init__(self, wasm_path: str) -> None:
        self.engine = wasmtime.Engine()
        self.component = _load(self.engine, wasm_path)
        self.linker = component.Linker(self.engine)
        self.linker.add_wasip2()
        exports = self.component.type.exports(self.engine)
        run_interface = next((name for name in exports if name.startswith(RUN_INTERFACE)), None)
        if run_interface is None:
            raise RuntimeError(f"{wasm_path} is not a WASI command (it exports no wasi:cli/run)")
        interface_index = self.component.get_export_index(run_interface)
        run_index = self.component.get_export_index("run", interface_index)
        if run_index is None:
            raise RuntimeError(f"{wasm_path}: {run_interface} has no run function")
        self.run_index = run_index
        self.env = [(k, v) for k, v in os.environ.items() if not k.startswith(HOST_ENV_PREFIX)]
        # Instantiation uses the shared linker; the runs themselves are
        # independent and go on in parallel.
        self.linker_lock = threading.Lock()

    def invoke(self, envelope: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Runs the component on one invocation envelope; (status, headers,
        body). Never raises for the app's failures: those are a 500."""
        execution_id = envelope.get("execution_id", "")
        stdout = bytearray()
        stderr = bytearray()
        work = tempfile.mkdtemp(prefix="ignite-wasm-")
        try:
            stdin_path = os.path.join(work, "invocation.json")
            with open(stdin_path, "w") as stdin:
                json.dump(envelope, stdin)
            scratch = os.path.join(work, "tmp")
            os.mkdir(scratch)
            wasi = wasmtime.WasiConfig()
            wasi.argv = ["app"]
            wasi.env = self.env
            wasi.stdin_file = stdin_path
            wasi.stdout_custom = stdout.extend
            wasi.stderr_custom = stderr.extend
            wasi.preopen_dir(scratch, "/tmp")
            store = wasmtime.Store(self.engine)
            store.set_wasi(wasi)
            trap = None
            try:
                with self.linker_lock:
                    instance = self.linker.instantiate(store, self.component)
                run = instance.get_func(store, self.run_index)
                if run is None:
                    raise RuntimeError("the component's run export is not a function")
                run(store)
            except (wasmtime.WasmtimeError, wasmtime.Trap) as error:
                trap = str(error).strip().splitlines()[0] if str(error).strip() else "trap"
        finally:
            shutil.rmtree(work, ignore_errors=True)
        logs, reply = _split_reply(bytes(stdout))
        _log(execution_id, "stdout", logs)
        _log(execution_id, "stderr", bytes(stderr))
        if reply is not None:
            # A panic's envelope is written by the SDK's hook before the
            # trap, so the app's own message wins over the trap's.
            return reply
        message = f"the app trapped: {trap}" if trap else "the app wrote no response"
        _log(execution_id, "stderr", f"ignite: {message}\n".encode())
        return _error(500, message)


def _precompiled_path(wasm_path: str) -> str:
    return os.path.splitext(wasm_path)[0] + ".cwasm"


def _load(engine: wasmtime.Engine, wasm_path: str) -> component.Component:
    """The component, precompiled when possible (see the module docstring).
    Loading native code is only as safe as its source: the .cwasm is
    written by the platform's build, in the artifact directory that pods
    mount read-only."""
    precompiled = _precompiled_path(wasm_path)
    if os.path.exists(precompiled):
        try:
            return component.Component.deserialize_file(engine, precompiled)
        except wasmtime.WasmtimeError as error:
            print(
                f"ignite: compiling {wasm_path}: {precompiled} is unusable: {error}",
                file=sys.stderr,
            )
    return component.Component.from_file(engine, wasm_path)


def precompile(wasm_path: str, precompiled: str) -> None:
    """Compiles the component ahead of time (the build's step)."""
    compiled = component.Component.from_file(wasmtime.Engine(), wasm_path)
    with open(precompiled, "wb") as out:
        out.write(compiled.serialize())


def _split_reply(stdout: bytes) -> tuple[bytes, tuple[int, dict[str, str], bytes] | None]:
    """Splits the app's stdout into what it printed and the response
    envelope on its last non-empty line (None when there is none)."""
    text = stdout.rstrip(b"\n")
    cut = text.rfind(b"\n")
    last = text[cut + 1 :]
    try:
        reply = json.loads(last)
        status = int(reply["status"])
        headers = {str(k): str(v) for k, v in reply.get("headers", {}).items()}
        body = base64.b64decode(reply.get("body_b64", ""), validate=True)
    except (ValueError, KeyError, TypeError, AttributeError):
        return stdout, None
    return text[: max(cut, 0)], (status, headers, body)


def _log(execution_id: str, stream: str, data: bytes) -> None:
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line:
            record = {"execution_id": execution_id, "stream": stream, "message": line}
            sys.stdout.write(RECORD_SEPARATOR + json.dumps(record) + "\n")
    sys.stdout.flush()


def _error(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return (
        status,
        {"content-type": "application/json"},
        json.dumps({"error": message}).encode(),
    )


class _Counter:
    """Invocations in flight, so SIGTERM can wait for them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    app: App
    in_flight: _Counter

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        path, _, query = self.path.partition("?")
        try:
            body = self._read_body()
        except ValueError:
            self._send(*_error(400, "malformed request body"))
            return
        if path == "/_ignite/health":
            self._send(200, {"content-type": "application/json"}, b'{"ok": true}')
            return
        if path == "/_ignite/load":
            self._send(*_error(409, "this runtime starts with its code and cannot be loaded"))
            return
        if path.startswith("/_ignite/"):
            self._send(*_error(404, "unknown platform endpoint"))
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        envelope = {
            "method": self.command,
            "path": path,
            "query": query,
            "headers": headers,
            "body_b64": base64.b64encode(body).decode(),
            "execution_id": headers.get("x-ignite-execution-id", ""),
            "function_id": os.environ.get("IGNITE_FUNCTION_ID", ""),
            "organization_id": os.environ.get("IGNITE_ORGANIZATION_ID", ""),
        }
        with self.in_flight.lock:
            self.in_flight.active += 1
        try:
            self._send(*self.app.invoke(envelope))
        finally:
            with self.in_flight.lock:
                self.in_flight.active -= 1

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        if not any(name.lower() == "content-type" for name in headers):
            headers = {**headers, "content-type": "application/octet-stream"}
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def address_string(self) -> str:
        return "pod"  # a unix socket peer has no address

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the platform logs requests; the pod's output is the app's


class _Quiet:
    """A client hanging up mid-request is routine, not worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[misc]


class _UnixServer(_Quiet, ThreadingMixIn, UnixStreamServer):
    daemon_threads = True


class _TCPServer(_Quiet, ThreadingMixIn, TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    """Start the host as docs/pod-protocol.md describes."""
    if len(sys.argv) == 4 and sys.argv[1] == "--precompile":
        precompile(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) != 2:
        sys.exit("usage: ignite_wasm_host.py APP.wasm | --precompile APP.wasm APP.cwasm")
    try:
        app = App(sys.argv[1])
    except (OSError, RuntimeError, wasmtime.WasmtimeError) as error:
        print(f"ignite: cannot load {sys.argv[1]}: {error}", file=sys.stderr)
        sys.exit(1)
    counter = _Counter()
    handler = type("Handler", (_Handler,), {"app": app, "in_flight": counter})
    server: UnixStreamServer | TCPServer
    socket_path = os.environ.get("IGNITE_SOCKET")
    if socket_path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)  # left behind by an earlier pod
        server = _UnixServer(socket_path, handler)
    else:
        server = _TCPServer(("0.0.0.0", int(os.environ.get("IGNITE_PORT", "8080"))), handler)

    def on_sigterm(_signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever, which runs on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    server.serve_forever()
    server.server_close()
    deadline = time.monotonic() + SHUTDOWN_GRACE_SECS
    while counter.active and time.monotonic() < deadline:
        time.sleep(0.01)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
