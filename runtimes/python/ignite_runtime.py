"""Ignite's managed Python runtime: serves one app's ``handler(payload, ctx)``.

It implements docs/pod-protocol.md with the standard library alone, because
it runs inside the pod's sandbox where nothing of the platform's own
environment is importable, and it imports as little as it can because its
start-up is part of every cold start.

Two ways to start:

* with ``IGNITE_CODE_DIR`` set, it loads the app at once and then serves;
* without it (a pre-started pool process), it serves ``503`` on the health
  probe until one ``POST /_ignite/load`` names the app to load.

HTTP/1.1 is served on the unix socket ``IGNITE_SOCKET`` (or TCP
``IGNITE_PORT``), one thread per connection: the platform sends at most
``IGNITE_MAX_CONCURRENCY`` requests at once, so the thread count is bounded
by its connection pool. ``print`` output of a request is written as tagged
log records (0x1E + JSON) carrying that request's execution id.

The app is imported, and with a concurrency of 1 (the default) every call
of its handler runs, on the process's **main thread**, as when the handler
runs locally: libraries that insist on it (``signal.signal``, some C
extensions' set-up and random seeding) behave the same. Connection threads
hand those calls to the main thread and wait for the answer. With a higher
concurrency, calls run on their connection threads, in parallel.

Artifact layout (written by ignite_server/builds/python.py): ``app/`` holds the
user's code (``handler.py`` at its root), ``deps/`` the packages installed
from ``requirements.txt``; both go on ``sys.path`` in that order, and ``app/``
is the working directory, as when the project runs locally.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sys
import threading
import time

# Largest request head (request line + headers) accepted; bigger is a client
# bug or an attack, and 64 KiB is what common proxies allow.
MAX_HEAD_BYTES = 64 * 1024
# Read size for bodies: big enough that a 32 MiB body takes few syscalls.
RECV_BYTES = 256 * 1024
# Grace for in-flight requests after SIGTERM; the platform SIGKILLs later.
SHUTDOWN_GRACE_SECS = 30.0
RECORD_SEPARATOR = "\x1e"

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _State:
    """What this process serves; set once by load()."""

    def __init__(self) -> None:
        self.handler = None
        self.function_id = ""
        self.organization_id = ""
        self.lock = threading.Lock()
        self.loading = False
        self.active = 0
        self.stopping = False
        #: Requests the platform sends at once; 1 runs the handler on the
        #: main thread.
        self.max_concurrency = 1


STATE = _State()
_local = threading.local()


class _MainThread:
    """Runs functions on the process's main thread for other threads.

    The main thread loops in :meth:`serve`; :meth:`call` from any other
    thread queues a function and waits for its result (or exception).
    """

    # How often the waiting main thread looks at STATE.stopping, and lets
    # Python run signal handlers.
    POLL_SECS = 0.2

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()

    def call(self, fn, *args):
        if threading.current_thread() is threading.main_thread():
            return fn(*args)
        done = threading.Event()
        box: list = []

        def job() -> None:
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:  # handed to the caller's thread
                box.append((False, exc))
            finally:
                done.set()

        self._jobs.put(job)
        done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def serve(self, until) -> None:
        """Run queued functions until ``until()`` is true."""
        while not until():
            try:
                job = self._jobs.get(timeout=self.POLL_SECS)
            except queue.Empty:
                continue
            job()


MAIN = _MainThread()


class _TaggedStream:
    """Replaces sys.stdout / sys.stderr: lines written while a request runs
    on this thread become tagged records with that request's execution id;
    anything else passes through untouched."""

    def __init__(self, real, name: str) -> None:
        self._real = real
        self._name = name
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        execution_id = getattr(_local, "execution_id", None)
        if execution_id is None:
            with self._lock:
                self._real.write(text)
                self._real.flush()
            return len(text)
        buffers = _local.buffers
        pending = buffers.get(self._name, "") + text
        *lines, rest = pending.split("\n")
        buffers[self._name] = rest
        if lines:
            self._emit(execution_id, lines)
        return len(text)

    def flush_request(self, execution_id: str) -> None:
        rest = _local.buffers.pop(self._name, "")
        if rest:
            self._emit(execution_id, [rest])

    def _emit(self, execution_id: str, lines: list[str]) -> None:
        records = "".join(
            RECORD_SEPARATOR
            + json.dumps({"execution_id": execution_id, "stream": self._name, "message": line})
            + "\n"
            for line in lines
        )
        with self._lock:
            self._real.write(records)
            self._real.flush()

    def flush(self) -> None:
        with self._lock:
            self._real.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return int(self._real.fileno())

    @property
    def encoding(self) -> str:
        return str(self._real.encoding)


def load(code_dir: str, function_id: str, organization_id: str, env: dict) -> None:
    """Import the app's handler.py from ``code_dir`` and make it the handler."""
    app_dir = os.path.join(code_dir, "app")
    deps_dir = os.path.join(code_dir, "deps")
    os.environ.update({str(k): str(v) for k, v in env.items()})
    sys.path[:0] = [app_dir, deps_dir]
    os.chdir(app_dir)
    import importlib

    module = importlib.import_module("handler")
    handler = getattr(module, "handler", None)
    if not callable(handler):
        raise LookupError("handler.py defines no function named 'handler'")
    STATE.function_id = function_id
    STATE.organization_id = organization_id
    STATE.handler = handler


def load_error(exc: BaseException, code_dir: str) -> str:
    """Why the app could not be loaded. For an error in the app's own files
    (a SyntaxError or ImportError in any module the handler imports) it
    starts with the file:line relative to the app and ends with the
    traceback's last frame there, as the publish that failed reports it."""
    app_dir = os.path.join(code_dir, "app")

    def relative(path):
        path = os.path.abspath(path or "")
        for root in (app_dir, code_dir):
            if path.startswith(root + os.sep):
                return os.path.relpath(path, root)
        return None

    if isinstance(exc, SyntaxError) and relative(exc.filename):
        where = relative(exc.filename)
        source = (exc.text or "").strip()
        frame = f'  File "{where}", line {exc.lineno}' + (f"\n    {source}" if source else "")
        return f"{where}:{exc.lineno}: {type(exc).__name__}: {exc.msg}\n{frame}"
    headline = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if relative(f.filename)]
    if not frames:
        return headline
    last = frames[-1]
    where = relative(last.filename)
    frame = f'  File "{where}", line {last.lineno}, in {last.name}'
    if last.line:
        frame += f"\n    {last.line}"
    return f"{where}:{last.lineno}: {headline}\n{frame}"


def _encode(result) -> tuple[bytes, str]:
    if isinstance(result, bytes | bytearray | memoryview):
        return bytes(result), "application/octet-stream"
    if isinstance(result, str):
        return result.encode("utf-8"), "text/plain; charset=utf-8"
    return json.dumps(result).encode("utf-8"), "application/json"


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode("utf-8")


class Context(dict):
    """The handler's ``ctx``: a plain dict with exactly seed 000's three keys
    (execution_id, function_id, organization_id), plus, as an attribute, the
    request's headers with lower-cased names (``ctx.headers``: a W3C
    ``traceparent`` among them when the platform traces, so the handler's
    own spans can join the trace)."""

    headers: dict[str, str]


def _call_handler(
    payload: bytes, execution_id: str, headers: dict | None = None
) -> tuple[int, bytes, str]:
    ctx = Context(
        execution_id=execution_id,
        function_id=STATE.function_id,
        organization_id=STATE.organization_id,
    )
    ctx.headers = dict(headers or {})
    _local.execution_id = execution_id
    _local.buffers = {}
    try:
        result = STATE.handler(payload, ctx)  # type: ignore[misc]
        if hasattr(result, "__await__"):
            import asyncio

            result = asyncio.run(_await(result))
        body, content_type = _encode(result)
        return 200, body, content_type
    except Exception as exc:
        import traceback

        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return 500, _error_body(message), "application/json"
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, _TaggedStream):
                stream.flush_request(execution_id)
        _local.execution_id = None


async def _await(awaitable):
    return await awaitable


class _BadRequest(Exception):
    pass


class _Connection:
    """One client connection: parses HTTP/1.1 requests and answers them."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def serve(self) -> None:
        try:
            while not STATE.stopping:
                request = self._read_request()
                if request is None:
                    return
                keep_alive = self._dispatch(*request)
                if not keep_alive:
                    return
        except (_BadRequest, ValueError):
            self._send(400, _error_body("malformed HTTP request"), "application/json", False)
        except OSError:
            pass
        finally:
            try:  # noqa: SIM105 - contextlib would be one more import per cold start
                self.sock.close()
            except OSError:
                pass

    def _recv_more(self) -> bool:
        data = self.sock.recv(RECV_BYTES)
        if not data:
            return False
        self.buf += data
        return True

    def _read_request(self):
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > MAX_HEAD_BYTES:
                raise _BadRequest()
            if not self._recv_more():
                if self.buf:
                    raise _BadRequest()
                return None
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[: end + 4]
        request_line, *header_lines = head.split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        else:
            body = self._read_exact(int(headers.get("content-length", "0") or "0"))
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        return method, target, headers, body, keep_alive

    def _read_exact(self, length: int) -> bytes:
        while len(self.buf) < length:
            if not self._recv_more():
                raise _BadRequest()
        body = bytes(self.buf[:length])
        del self.buf[:length]
        return body

    def _read_line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return line
            if len(self.buf) > MAX_HEAD_BYTES or not self._recv_more():
                raise _BadRequest()

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self._read_line().split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._read_exact(size))
            self._read_exact(2)

    def _dispatch(self, method: str, target: str, headers: dict, body: bytes, keep_alive: bool):
        path = target.split("?", 1)[0]
        if path == "/_ignite/health":
            ready = STATE.handler is not None and not STATE.stopping
            status = 200 if ready else 503
            return self._send(
                status, json.dumps({"ready": ready}).encode(), "application/json", keep_alive
            )
        if path == "/_ignite/load" and method == "POST":
            return self._load(body, keep_alive)
        if STATE.handler is None:
            return self._send(503, _error_body("no app loaded"), "application/json", keep_alive)
        execution_id = headers.get("x-ignite-execution-id", "")
        with STATE.lock:
            STATE.active += 1
        try:
            if STATE.max_concurrency <= 1:
                status, payload, content_type = MAIN.call(
                    _call_handler, body, execution_id, headers
                )
            else:
                status, payload, content_type = _call_handler(body, execution_id, headers)
        finally:
            with STATE.lock:
                STATE.active -= 1
        return self._send(status, payload, content_type, keep_alive)

    def _load(self, body: bytes, keep_alive: bool) -> bool:
        with STATE.lock:
            if STATE.loading or STATE.handler is not None:
                return self._send(
                    409, _error_body("an app is loaded already"), "application/json", keep_alive
                )
            STATE.loading = True
        spec: dict = {}
        try:
            spec = json.loads(body)
            STATE.max_concurrency = int(spec.get("max_concurrency") or STATE.max_concurrency)
            MAIN.call(
                load,
                spec["code_dir"],
                spec["function_id"],
                spec.get("organization_id", ""),
                spec.get("env") or {},
            )
        except Exception as exc:
            message = f"cannot load the app: {load_error(exc, spec.get('code_dir', ''))}"
            print(message, file=sys.stderr)
            return self._send(500, _error_body(message), "application/json", keep_alive)
        return self._send(200, b'{"ok": true}', "application/json", keep_alive)

    def _send(self, status: int, body: bytes, content_type: str, keep_alive: bool) -> bool:
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        ).encode("latin-1")
        # One buffer for small answers saves a packet; big bodies go as they are.
        if len(body) < 64 * 1024:
            self.sock.sendall(head + body)
        else:
            self.sock.sendall(head)
            self.sock.sendall(body)
        return keep_alive


def _listen() -> socket.socket:
    path = os.environ.get("IGNITE_SOCKET")
    if path:
        try:  # noqa: SIM105 - as above
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", int(os.environ.get("IGNITE_PORT", "8080"))))
    sock.listen(128)
    return sock


def _serve_forever(listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError as exc:
            if STATE.stopping:
                return
            print(f"the runtime cannot accept connections: {exc}", file=sys.stderr)
            os._exit(1)
        threading.Thread(target=_Connection(conn).serve, daemon=True).start()


def main() -> None:
    """Start the runtime as docs/pod-protocol.md describes."""
    sys.stdout = _TaggedStream(sys.stdout, "stdout")
    sys.stderr = _TaggedStream(sys.stderr, "stderr")
    STATE.max_concurrency = int(os.environ.get("IGNITE_MAX_CONCURRENCY") or "1")
    code_dir = os.environ.get("IGNITE_CODE_DIR")
    if code_dir:
        try:
            load(
                code_dir,
                os.environ.get("IGNITE_FUNCTION_ID", ""),
                os.environ.get("IGNITE_ORGANIZATION_ID", ""),
                {},
            )
        except Exception as exc:
            print(f"cannot load the app: {load_error(exc, code_dir)}", file=sys.stderr)
            sys.exit(1)
    listener = _listen()

    def on_sigterm(_signum, _frame) -> None:
        STATE.stopping = True
        listener.close()

    signal.signal(signal.SIGTERM, on_sigterm)
    # Connections are accepted on a thread of their own; the main thread
    # runs the handler's calls (see the module docstring).
    threading.Thread(target=_serve_forever, args=(listener,), daemon=True).start()
    deadline: list[float] = []

    def finished() -> bool:
        if not STATE.stopping:
            return False
        if not deadline:
            deadline.append(time.monotonic() + SHUTDOWN_GRACE_SECS)
        return STATE.active == 0 or time.monotonic() > deadline[0]

    try:
        MAIN.serve(finished)
    finally:
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
