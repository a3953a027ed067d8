"""The local pod backend: each pod is a sandboxed child process.

Construction (server start-up)::

    backend = LocalBackend(
        state_dir=Path(".state"),     # pods get <state_dir>/pods/<pod-id>/
        sandbox="auto",               # "required": fail without bubblewrap;
                                      # "off": never sandbox (development only)
        production=False,             # production refuses unsandboxed pods ...
        allow_unsandboxed=False,      # ... unless this explicitly allows them
        log_sink=store_app_log,       # receives every PodLogRecord
    )
    ...
    await backend.close()

``sandbox="auto"`` uses bubblewrap when it is installed and works, and
otherwise runs pods as plain child processes, saying so loudly in the log
and in ``info.warnings`` (which the invoker shows in every app's status).

How a pod starts: the artifact's ``ignite-launch.json`` gives argv,
read-only paths, runtime variables and maybe a ``prestart`` pool. Pooled
runtimes are taken pre-started from a ``WarmPool`` and specialized with
``/_ignite/load`` after the artifact is hard-linked into the pod's code
directory (which the sandbox already mounts read-only at ``/code``); others
are started with the artifact mounted at ``/code`` directly. Limits come from
cgroups (see cgroups.py); sandboxing from sandbox.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import uuid
from pathlib import Path
from typing import Literal

import structlog

from ignite_server.backends.local import sandbox as bwrap
from ignite_server.backends.local.cgroups import CgroupRoot
from ignite_server.backends.local.manifest import LaunchManifest, ManifestError
from ignite_server.backends.local.pod import LocalPod
from ignite_server.backends.local.pool import WarmPool
from ignite_server.backends.protocol import (
    BackendInfo,
    LogSink,
    PodLogRecord,
    PodSpec,
    PodStartError,
)

log = structlog.get_logger(__name__)

SandboxMode = Literal["auto", "required", "off"]

#: Pre-started pods kept per pool: two absorb a small burst of cold starts
#: (and the refill of one) while costing ~10 MB each when idle.
DEFAULT_POOL_SIZE = 2
#: Limits of a pre-started pod until it is specialized: it runs no app code
#: yet, so only the interpreter's own needs count.
POOL_MEMORY_MB = 256
POOL_CPU_MILLICORES = 1000
#: How long a pod may take from exec to ready; a Python pod needs ~50 ms, a
#: big app's imports a few seconds; past this something is wrong.
START_TIMEOUT_SECS = 30.0
#: Variables every pod gets; nothing else of the server's environment.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def _default_sink(record: PodLogRecord) -> None:
    log.info(
        "app log",
        app=record.app_id,
        version=record.version,
        pod=record.pod_id,
        execution_id=record.execution_id,
        stream=record.stream.name.lower(),
        message=record.message,
    )


class LocalBackend:
    """Runs pods as (sandboxed) local processes; see the module docstring."""

    def __init__(
        self,
        state_dir: Path,
        *,
        sandbox: SandboxMode = "auto",
        production: bool = False,
        allow_unsandboxed: bool = False,
        log_sink: LogSink | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        start_timeout_secs: float = START_TIMEOUT_SECS,
    ) -> None:
        self.pods_dir = Path(state_dir).resolve() / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self._sink = log_sink or _default_sink
        self._pool_size = pool_size
        self._start_timeout = start_timeout_secs
        self._refuse = ""
        warnings: list[str] = []
        self._bwrap: str | None = None
        if sandbox != "off":
            found = bwrap.find_bwrap()
            why = bwrap.probe(found) if found else "bubblewrap (bwrap) is not installed"
            if why and sandbox == "required":
                raise RuntimeError(f"the pod sandbox is required but unusable: {why}")
            if not why:
                self._bwrap = found
            else:
                warnings.append(f"pods run WITHOUT a sandbox: {why}")
        else:
            warnings.append("pods run WITHOUT a sandbox (sandbox=off)")
        if self._bwrap is None and production and not allow_unsandboxed:
            self._refuse = (
                "this server runs in production without a pod sandbox and will not run app "
                "code unsandboxed (install bubblewrap, or allow unsandboxed pods explicitly)"
            )
            warnings.append(self._refuse)
        self._cgroups = CgroupRoot()
        if not self._cgroups.has_memory:
            warnings.append(
                "no writable memory cgroup: memory limits fall back to RLIMIT_DATA "
                "and out-of-memory kills are not recognised"
            )
        self._info = BackendInfo(sandboxed=self._bwrap is not None, warnings=tuple(warnings))
        for warning in warnings:
            log.warning("local pod backend degraded", detail=warning)
        self._pools: dict[tuple[object, ...], WarmPool] = {}
        self._pods: set[LocalPod] = set()
        self._reapers: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._closed = False

    @property
    def info(self) -> BackendInfo:
        return self._info

    async def start(self, spec: PodSpec) -> LocalPod:
        """Start a pod for ``spec`` and return it once it is ready."""
        if self._closed:
            raise PodStartError("the pod backend is shut down")
        if self._refuse:
            raise PodStartError(self._refuse)
        try:
            manifest = await asyncio.to_thread(LaunchManifest.load, spec.artifact_dir)
        except ManifestError as exc:
            raise PodStartError(str(exc)) from exc
        if manifest.prestart:
            return await self._start_pooled(spec, manifest)
        return await self._start_direct(spec, manifest)

    async def prewarm(self, artifact_dir: Path) -> None:
        """Fill the pre-started pool used by ``artifact_dir``'s runtime now,
        so that the first cold start already finds a pod waiting."""
        manifest = await asyncio.to_thread(LaunchManifest.load, artifact_dir)
        if manifest.prestart:
            self._pool(manifest).warm()

    async def close(self) -> None:
        """Stop every pod and pool, and remove the backend's cgroups."""
        self._closed = True
        await asyncio.gather(*(pool.close() for pool in self._pools.values()))
        await asyncio.gather(*(pod.close() for pod in list(self._pods)), return_exceptions=True)
        for task in list(self._reapers):
            task.cancel()
        await asyncio.gather(*self._reapers, return_exceptions=True)
        self._cgroups.remove()

    # --- starting ------------------------------------------------------------

    def _pool(self, manifest: LaunchManifest) -> WarmPool:
        pool = self._pools.get(manifest.pool_key)
        if pool is None:
            pool = WarmPool(
                str(manifest.prestart),
                self._pool_size,
                lambda: self._start_generic(manifest),
            )
            self._pools[manifest.pool_key] = pool
        return pool

    async def _start_pooled(self, spec: PodSpec, manifest: LaunchManifest) -> LocalPod:
        pool = self._pool(manifest)
        pod = await pool.take()
        try:
            try:
                await asyncio.to_thread(_link_tree, spec.artifact_dir, pod.code_slot)
            except OSError as exc:
                await pod.close()
                raise PodStartError(f"cannot give the pod its code: {exc}") from exc
            code_dir = bwrap.CODE_MOUNT if self._bwrap else str(pod.code_slot)
            await pod.load(spec, code_dir, self._start_timeout)
        finally:
            pool.warm()
        return pod

    async def _start_generic(self, manifest: LaunchManifest) -> LocalPod:
        pod = self._new_pod()
        pod.cgroup.limit(POOL_MEMORY_MB, POOL_CPU_MILLICORES)
        pod.code_slot.mkdir()
        code_dir = bwrap.CODE_MOUNT if self._bwrap else str(pod.code_slot)
        await self._launch(pod, manifest, manifest.resolved_argv(code_dir), {}, pod.code_slot, 0)
        await pod.wait_listening(self._start_timeout)
        return pod

    async def _start_direct(self, spec: PodSpec, manifest: LaunchManifest) -> LocalPod:
        pod = self._new_pod()
        pod.spec = spec
        pod.cgroup.limit(spec.resources.memory_mb, spec.resources.cpu_millicores)
        code_dir = bwrap.CODE_MOUNT if self._bwrap else str(spec.artifact_dir)
        env = {
            **spec.env,
            "IGNITE_CODE_DIR": code_dir,
            "IGNITE_FUNCTION_ID": spec.app_id,
            "IGNITE_ORGANIZATION_ID": spec.app_id.split("/", 1)[0],
            "IGNITE_VERSION": str(spec.version),
            "IGNITE_MAX_CONCURRENCY": str(spec.max_concurrency),
        }
        rlimit = 0 if self._cgroups.has_memory else spec.resources.memory_mb
        await self._launch(
            pod, manifest, manifest.resolved_argv(code_dir), env, spec.artifact_dir, rlimit
        )
        await pod.wait_ready(self._start_timeout)
        return pod

    def _new_pod(self) -> LocalPod:
        pod_id = f"pod{next(self._ids)}-{uuid.uuid4().hex[:6]}"
        pod_dir = self.pods_dir / pod_id
        (pod_dir / "run").mkdir(parents=True)
        pod = LocalPod(
            pod_id=pod_id,
            pod_dir=pod_dir,
            cgroup=self._cgroups.pod(pod_id),
            sink=self._sink,
            sandboxed=self._bwrap is not None,
        )
        self._pods.add(pod)
        reaper = asyncio.create_task(self._forget(pod))
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)
        return pod

    async def _forget(self, pod: LocalPod) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await pod.wait()
        self._pods.discard(pod)

    async def _launch(
        self,
        pod: LocalPod,
        manifest: LaunchManifest,
        argv: list[str],
        env: dict[str, str],
        code_dir: Path,
        rlimit_data_mb: int,
    ) -> None:
        if self._bwrap:
            socket = f"{bwrap.RUN_MOUNT}/{pod.socket_path.name}"
            scratch = "/tmp"
            prefix = bwrap.command(
                self._bwrap, ro_paths=manifest.ro_paths, code_dir=code_dir, run_dir=pod.run_dir
            )
        else:
            socket = str(pod.socket_path)
            scratch = str(pod.dir / "tmp")
            (pod.dir / "tmp").mkdir()
            prefix = []
        full_env = {
            **env,
            **manifest.env,
            **BASE_ENV,
            "HOME": scratch,
            "TMPDIR": scratch,
            "IGNITE_SOCKET": socket,
        }
        full_env.setdefault("IGNITE_MAX_CONCURRENCY", "1")
        try:
            await pod.launch([*prefix, *argv], full_env, rlimit_data_mb)
        except OSError as exc:
            raise PodStartError(f"cannot start the pod: {exc}") from exc


def _link_tree(src: Path, dst: Path) -> None:
    """Make ``src``'s files appear under ``dst``: hard links where the file
    system allows (instant, no extra space), copies where it does not."""

    def link_or_copy(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link_or_copy, dirs_exist_ok=True)
