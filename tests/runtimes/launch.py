"""Starting a built artifact the way its ``ignite-launch.json`` says, and
talking to it over its unix socket, for the compiled runtimes' tests.

The pod backend's sandbox is not involved: these tests are about what a
pipeline produces and how the runtime inside it behaves.
"""

from __future__ import annotations

import asyncio
import json
import signal
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.eventually import eventually_async

FUNCTION_ID = "acme-corp/hello"
ORGANIZATION_ID = "acme-corp"
#: How long a pod may take from exec to a healthy socket.
START_TIMEOUT_SECS = 30


def context_answer(execution_id: str, **fields: Any) -> dict[str, Any]:
    """What the seed handlers answer: ``fields`` and, from their context, the
    execution's id and the function's (FUNCTION_ID)."""
    return {**fields, "execution_id": execution_id, "function_id": FUNCTION_ID}


@dataclass
class Pod:
    """A running artifact and an HTTP client bound to its socket."""

    process: asyncio.subprocess.Process
    session: aiohttp.ClientSession
    stderr_path: Path

    async def call(
        self, body: bytes | str | dict[str, Any] = b"", *, execution_id: str = "01JTESTEXECUTION"
    ) -> tuple[int, str, bytes]:
        """POSTs ``body`` (a dict as JSON) to ``/``: (status, content type, body)."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        headers = {"X-Ignite-Execution-Id": execution_id, "Content-Type": "application/json"}
        async with self.session.post("http://pod/", data=data, headers=headers) as response:
            return response.status, response.headers.get("Content-Type", ""), await response.read()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def _in_private_tmp(value: str, run_dir: str) -> str:
    """``value`` with a pod-private /tmp path moved under ``run_dir``."""
    if value.startswith("/tmp/") and not Path(value).exists():
        return value.replace("/tmp/", f"{run_dir}/", 1)
    return value


@asynccontextmanager
async def launched(artifact_dir: Path) -> AsyncIterator[Pod]:
    """Starts the artifact as its manifest says, with the pod protocol's
    environment, waits for ``/_ignite/health``, and stops it with SIGTERM."""
    manifest = json.loads((artifact_dir / "ignite-launch.json").read_text())
    argv = [arg.replace("{code}", str(artifact_dir)) for arg in manifest["argv"]]
    # Short paths: a unix socket path must fit in 108 bytes.
    with tempfile.TemporaryDirectory(prefix="ignite-pod-") as run_dir:
        socket_path = Path(run_dir) / "pod.sock"
        stderr_path = Path(run_dir) / "stderr.log"
        # The sandbox gives each pod a private /tmp; the run directory stands
        # in for it in the runtime's own variables (e.g. a cache directory).
        # Host paths the manifest mounts (a checkout that itself lives under
        # /tmp) are real and stay as they are.
        runtime_env = {
            key: _in_private_tmp(value, run_dir) for key, value in manifest["env"].items()
        }
        env = {
            "PATH": "/usr/bin:/bin",
            "TMPDIR": run_dir,
            "IGNITE_SOCKET": str(socket_path),
            "IGNITE_CODE_DIR": str(artifact_dir),
            "IGNITE_FUNCTION_ID": FUNCTION_ID,
            "IGNITE_ORGANIZATION_ID": ORGANIZATION_ID,
            "IGNITE_VERSION": "1",
            "IGNITE_MAX_CONCURRENCY": "4",
            **runtime_env,
        }
        with stderr_path.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *argv, env=env, cwd=run_dir, stdout=stderr, stderr=stderr
            )
        connector = aiohttp.UnixConnector(path=str(socket_path))
        session = aiohttp.ClientSession(connector=connector)
        pod = Pod(process, session, stderr_path)
        try:
            await _wait_healthy(pod)
            yield pod
        finally:
            await session.close()
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def error_and_recovery(
    pod: Pod, failing: bytes | dict[str, Any], then: bytes | dict[str, Any]
) -> tuple[str, Any]:
    """Sends ``failing``, which must be answered 500 with a JSON error, then
    ``then``, which must succeed: the error's message and the answer to
    ``then`` (decoded JSON)."""
    status, content_type, body = await pod.call(failing)
    assert (status, content_type) == (500, "application/json")
    error = json.loads(body)["error"]
    status, _, body = await pod.call(then)
    assert status == 200
    return error, json.loads(body)


async def drained_on_sigterm(
    artifact_dir: Path, body: bytes | dict[str, Any]
) -> tuple[tuple[int, str, bytes], int]:
    """Starts a pod of the artifact, sends it ``body`` (a request the handler
    takes a while to answer), then SIGTERM while it is in flight; returns
    (its response, the exit code)."""
    async with launched(artifact_dir) as pod:
        in_flight = asyncio.create_task(pod.call(body))
        await asyncio.sleep(0.3)
        assert not in_flight.done(), "the request must still be in flight at SIGTERM"
        pod.process.send_signal(signal.SIGTERM)
        response = await in_flight
        exit_code = await asyncio.wait_for(pod.process.wait(), 10)
    return response, exit_code


async def _wait_healthy(pod: Pod) -> None:
    async def healthy() -> bool:
        if pod.process.returncode is not None:
            # Not an AssertionError: an exited pod is not worth waiting for.
            raise RuntimeError(f"the pod exited with {pod.process.returncode}: {pod.stderr()}")
        try:
            async with pod.session.get("http://pod/_ignite/health") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False  # the socket is not there yet

    await eventually_async(healthy, within=START_TIMEOUT_SECS, what="the pod healthy")
