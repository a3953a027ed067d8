"""The local pod backend: each pod is a sandboxed child process.

Construction (server start-up)::

    backend = LocalBackend(
        state_dir=Path(".state"),     # pods get <state_dir>/pods/<pod-id>/
        sandbox="auto",               # "required": fail without a sandbox;
                                      # "off": never sandbox (development only)
        production=False,             # production refuses unsandboxed pods ...
        allow_unsandboxed=False,      # ... unless this explicitly allows them
        log_sink=store_app_log,       # receives every PodLogRecord
        edge=Edge(("127.0.0.1", 8080), ("127.0.0.1", 8443)),  # where image
        apps_domain="ignite.localhost",    # pods' calls to other apps' URLs go
        trust_dir=Path(".state/pod-trust"),  # the platform's CA, for https
        memory_capacity_mb=0,         # all pods together; 0: the host's
                                      # memory less host_memory_reserve_mb
        registry_access=access,       # who pulls image apps' images
    )
    ...
    await backend.close()

``sandbox="auto"`` uses the sandbox of ignite_server/containment/ when
bubblewrap and libseccomp are installed and work, and otherwise runs pods as
plain child processes, saying so loudly in the log and in ``info.warnings``
(which the invoker shows in every app's status).

How a pod starts: the artifact's ``ignite-launch.json`` gives argv,
read-only paths, runtime variables and maybe a ``prestart`` pool. Pooled
runtimes are taken pre-started from a ``WarmPool`` (one per pool key and
resource size, since a pod's limits and ``/tmp`` size are fixed when it
starts) and specialized with ``/_ignite/load`` after the artifact is
hard-linked into the pod's code directory (which the sandbox already mounts
read-only at ``/code``); others are started with the artifact mounted at
``/code`` directly. The pools:

* a runtime that can wait for its app (Python, the Deno bootstrap) is
  pre-started as argv says; a pool's pods get the manifest's
  ``prestart_files`` (Deno's configuration) in their code directory first,
  so what the runtime reads when it starts is already the app's;
* ``exec`` (Go, Rust): the pre-started process is the exec launcher
  (exec_launcher.py) with argv as its arguments; on load it execs the app's
  binary in its place, which then binds the socket itself, and the pod is
  ready when the binary's health probe says so. Without a built launcher
  these pods start directly.

A pod is specialized once: it serves one app version until it ends.

CPU is shared by organization, not by pod: the pods of one organization
split CPU_SHARES_PER_ORGANIZATION ``cpu.shares`` between them (rewritten
whenever one of its pods starts or ends), so an organization running forty
busy pods weighs on the CPU scheduler as much as one running a single pod,
and that pod gets its turn at once. Each pod's ``cpu_millicores`` quota
still caps it.

Image apps (a manifest with an ``image`` entry) run their container with
crun instead, inside the same containment (image_pod.py); their images are
unpacked once per digest under ``<state_dir>/images/`` (image_cache.py).

What a pod has on the host: ``<state_dir>/pods/<pod-id>/`` (root's, 0700)
holding ``code/`` (pooled pods) and ``run/``, a 256 KiB tmpfs owned by the
pod's own uid where its runtime creates the unix socket; a uid of its own;
cgroups. All of it is given back when the pod ends. A server that dies
takes its pods with it, image pods too: a watchdog process kills whatever is
left in the pods' cgroups the moment the server is gone
(containment/watchdog.py); what a crashed server left in ``pods/`` (folders,
socket mounts) is removed when the next one starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import shutil
import uuid
from pathlib import Path
from typing import Literal

import structlog

from ignite_common.task_supervisor import TaskSupervisor
from ignite_server.backends.local import exec_launcher, oci_runtime
from ignite_server.backends.local.edge_forward import Edge
from ignite_server.backends.local.image_cache import ImageCache
from ignite_server.backends.local.image_pod import ImagePod
from ignite_server.backends.local.pod import LocalPod
from ignite_server.backends.local.pool import PoolStats, WarmPool
from ignite_server.containment import identities, mounts, seccomp, watchdog
from ignite_server.containment.cgroups import CgroupRoot, LimitNotApplied, host_memory_mb
from ignite_server.containment.sandbox import Policy, SandboxUnavailable, bubblewrap, command
from ignite_server.domain.models import Resources
from ignite_server.ports.image_builder import RegistryAccess, RegistryCredentials
from ignite_server.ports.image_launch import ImageLaunch
from ignite_server.ports.launch_manifest import LaunchManifest, ManifestError
from ignite_server.ports.pod_backend import (
    BackendInfo,
    LogSink,
    ObservedDeployment,
    PodLogRecord,
    PodSpec,
    PodStartError,
)
from ignite_server.ports.pod_protocol import (
    CODE_DIR_ENV,
    EXEC_POOL,
    MAX_CONCURRENCY_ENV,
    SOCKET_ENV,
    app_identity_env,
)

log = structlog.get_logger(__name__)

SandboxMode = Literal["auto", "required", "off"]

#: Where pods see their code and their socket folder.
CODE_MOUNT = "/code"
RUN_MOUNT = "/run/ignite"
#: Pre-started pods kept per pool: two absorb a small burst of cold starts
#: (and the refill of one) while costing ~10 MB each when idle.
DEFAULT_POOL_SIZE = 2
#: How long a pod may take from exec to ready; a Python pod needs ~50 ms, a
#: big app's imports a few seconds; past this something is wrong.
START_TIMEOUT_SECS = 30.0
#: Variables every pod gets; nothing else of the server's environment.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
#: The socket folder's size: a socket takes no space; the cap only stops a
#: pod from using the one folder it shares with the host as storage.
RUN_TMPFS_KIB = 256
#: The smallest /tmp a pod gets, whatever its memory.
MIN_TMP_MB = 16
#: CPU weight of one organization's pods together (the kernel's default
#: weight of one group), divided among them; never below the kernel's
#: minimum of 2.
CPU_SHARES_PER_ORGANIZATION = 1024
MIN_CPU_SHARES = 2
#: Memory kept off pods when no reserve is given: the server, PostgreSQL,
#: builds (up to 4 GiB each) and the host's own need it.
MIN_HOST_RESERVE_MB = 2048
HOST_RESERVE_FRACTION = 0.25


def pod_memory_capacity_mb(configured_mb: int, reserve_mb: int) -> int:
    """The memory all local pods together may have: ``configured_mb``, or
    the host's memory less ``reserve_mb`` (0: a quarter of it, at least
    MIN_HOST_RESERVE_MB)."""
    if configured_mb > 0:
        return configured_mb
    host = host_memory_mb()
    if host <= 0:
        return 0
    reserve = reserve_mb or max(MIN_HOST_RESERVE_MB, int(host * HOST_RESERVE_FRACTION))
    return max(host - reserve, 256)


class SandboxRequired(RuntimeError):
    """The server was told not to run pods without a sandbox, and none can be
    made here: it refuses to start."""


def tmp_size_mb(memory_mb: int) -> int:
    """A pod's /tmp holds up to half its memory limit: tmpfs pages count
    against the limit, and the other half is left for the program, so a pod
    that fills /tmp gets ENOSPC rather than being killed."""
    return max(MIN_TMP_MB, memory_mb // 2)


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
        edge: Edge | None = None,
        apps_domain: str = "ignite.localhost",
        trust_dir: Path | None = None,
        exec_launcher_path: Path | None = exec_launcher.DEFAULT_PATH,
        uids: identities.UidBlock | None = None,
        memory_capacity_mb: int = 0,
        host_memory_reserve_mb: int = 0,
        registry_access: RegistryAccess | None = None,
    ) -> None:
        self.pods_dir = Path(state_dir).resolve() / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(self.pods_dir)
        self._sink = log_sink or _default_sink
        self._pool_size = pool_size
        self._start_timeout = start_timeout_secs
        self._privileged = identities.privileged()
        #: Pods' uids come from the server's block (or one reserved here).
        self._block = uids or identities.reserve(Path(state_dir))
        self._owns_block = uids is None
        self._uids = self._block.pods
        warnings: list[str] = []
        self._bwrap: str | None = None
        if sandbox != "off":
            try:
                self._bwrap = bubblewrap()
            except SandboxUnavailable as exc:
                if sandbox == "required":
                    raise SandboxRequired(
                        f"the pod sandbox is required but unusable: {exc}"
                    ) from exc
                warnings.append(f"pods run WITHOUT a sandbox: {exc}")
        else:
            warnings.append("pods run WITHOUT a sandbox (sandbox=off)")
        if self._bwrap is not None and not self._privileged:
            warnings.append(
                "the server is not root: pods share its uid (inside a user namespace) and "
                "their socket folders are not size-capped"
            )
        if self._bwrap is None and production and not allow_unsandboxed:
            raise SandboxRequired(
                "a production server needs the pod sandbox and none is usable here "
                f"({'; '.join(warnings)}); install bubblewrap and libseccomp "
                "(`make sandbox`), or pass --allow-unsandboxed"
            )
        self._cgroups = CgroupRoot("pods")
        capacity = pod_memory_capacity_mb(memory_capacity_mb, host_memory_reserve_mb)
        # Image pods (crun) do not die with the server by themselves.
        self._watchdog = (
            watchdog.start(self._cgroups.bases.values()) if self._cgroups.bases else None
        )
        if not self._cgroups.has_memory:
            warnings.append(
                "no writable memory cgroup: memory limits fall back to RLIMIT_DATA "
                "and out-of-memory kills are not recognised"
            )
        elif capacity:
            try:
                self._cgroups.limit_memory(capacity)
            except LimitNotApplied as exc:
                warnings.append(f"the pods' total memory limit could not be set: {exc}")
        self._info = BackendInfo(
            sandboxed=self._bwrap is not None,
            warnings=tuple(warnings),
            memory_capacity_mb=capacity or None,
        )
        log.info("local pod backend", pod_memory_capacity_mb=capacity or "unknown")
        for warning in warnings:
            log.warning("local pod backend degraded", detail=warning)
        self._pools: dict[tuple[object, ...], WarmPool] = {}
        self._pods: set[LocalPod] = set()
        #: One task per pod, forgetting it once it has ended.
        self._reapers = TaskSupervisor("local-pods")
        self._ids = itertools.count(1)
        self._closed = False
        self._images = ImageCache(Path(state_dir).resolve() / "images")
        self._edge = edge
        self._trust_dir = trust_dir
        self._apps_domain = apps_domain
        self._registry = registry_access
        self._image_tools_missing = oci_runtime.missing_tools()
        self._exec_launcher = (
            exec_launcher.installed(exec_launcher_path) if exec_launcher_path else None
        )
        if self._exec_launcher is None:
            log.info(
                "Go and Rust pods start without a pre-started pool",
                reason=f"no exec launcher at {exec_launcher_path} (make exec-launcher)",
            )
        if self._image_tools_missing:
            log.warning(
                "image apps cannot run here",
                missing=", ".join(self._image_tools_missing),
            )

    @property
    def info(self) -> BackendInfo:
        return self._info

    async def start(self, spec: PodSpec) -> LocalPod:
        """Start a pod for ``spec`` and return it once it is ready."""
        if self._closed:
            raise PodStartError("the pod backend is shut down")
        try:
            manifest = await asyncio.to_thread(LaunchManifest.load, spec.artifact_dir)
        except ManifestError as exc:
            raise PodStartError(str(exc)) from exc
        if manifest.image is not None:
            pod = await self._start_image(spec, manifest.image)
        elif manifest.prestart and (manifest.prestart != EXEC_POOL or self._exec_launcher):
            pod = await self._start_pooled(spec, manifest)
        else:
            pod = await self._start_direct(spec, manifest)
        self._share_cpu(_organization(spec))
        return pod

    def _share_cpu(self, organization: str) -> None:
        """Split the organization's CPU weight among its live pods."""
        pods = [
            pod
            for pod in self._pods
            if pod.spec is not None and pod.exit is None and _organization(pod.spec) == organization
        ]
        shares = max(MIN_CPU_SHARES, CPU_SHARES_PER_ORGANIZATION // max(1, len(pods)))
        for pod in pods:
            pod.cgroup.write("cpu", "cpu.shares", str(shares), required=False)

    def pool_stats(self) -> list[PoolStats]:
        """Every pre-started pool's idle pods and counters."""
        return [pool.stats() for pool in self._pools.values()]

    def observed(self, app_id: str, versions: frozenset[int]) -> ObservedDeployment | None:
        """Local pods are all the platform's own: its view is the truth."""
        return None

    async def scaling_changed(self, spec: PodSpec) -> None:
        """The platform's own autoscaler already has the new bounds."""

    async def remove_app(self, app_id: str) -> None:
        """Nothing outlives a local app's pods."""

    async def close(self) -> None:
        """Stop every pod and pool, and remove the backend's cgroups."""
        self._closed = True
        await asyncio.gather(*(pool.close() for pool in self._pools.values()))
        await asyncio.gather(*(pod.close() for pod in list(self._pods)), return_exceptions=True)
        await self._reapers.close()
        self._cgroups.remove()
        if self._watchdog is not None:
            await self._watchdog.stop()
        if self._owns_block:
            self._block.release()

    # --- starting ------------------------------------------------------------

    def _pool(self, manifest: LaunchManifest, resources: Resources) -> WarmPool:
        key = (*manifest.pool_key, resources.memory_mb, resources.cpu_millicores)
        pool = self._pools.get(key)
        if pool is None:
            pool = WarmPool(
                f"{manifest.prestart}/{resources.memory_mb}MB",
                self._pool_size,
                lambda: self._start_generic(manifest, resources),
            )
            self._pools[key] = pool
        return pool

    async def _start_pooled(self, spec: PodSpec, manifest: LaunchManifest) -> LocalPod:
        pool = self._pool(manifest, spec.resources)
        pod = await pool.take()
        try:
            try:
                await asyncio.to_thread(_link_tree, spec.artifact_dir, pod.code_slot)
            except OSError as exc:
                await pod.close()
                raise PodStartError(f"cannot give the pod its code: {exc}") from exc
            code_dir = CODE_MOUNT if self._bwrap else str(pod.code_slot)
            await pod.load(spec, code_dir, self._start_timeout)
        finally:
            pool.warm()
        return pod

    async def _start_generic(self, manifest: LaunchManifest, resources: Resources) -> LocalPod:
        pod = await self._new_pod(resources)
        try:
            await asyncio.to_thread(_seed_code_slot, pod.code_slot, manifest.prestart_files)
        except OSError as exc:
            await pod.stop(0)
            raise PodStartError(f"cannot prepare the pod's code directory: {exc}") from exc
        code_dir = CODE_MOUNT if self._bwrap else str(pod.code_slot)
        argv = manifest.resolved_argv(code_dir)
        if manifest.prestart == EXEC_POOL:
            assert self._exec_launcher is not None
            argv = [str(self._exec_launcher), *argv]
            manifest = dataclasses.replace(
                manifest, ro_paths=(*manifest.ro_paths, str(self._exec_launcher.parent))
            )
        await self._launch(pod, manifest, argv, {}, pod.code_slot, resources)
        await pod.wait_listening(self._start_timeout)
        return pod

    async def _start_direct(self, spec: PodSpec, manifest: LaunchManifest) -> LocalPod:
        pod = await self._new_pod(spec.resources)
        pod.spec = spec
        code_dir = CODE_MOUNT if self._bwrap else str(spec.artifact_dir)
        env = {**_app_env(spec), CODE_DIR_ENV: code_dir}
        await self._launch(
            pod, manifest, manifest.resolved_argv(code_dir), env, spec.artifact_dir, spec.resources
        )
        await pod.wait_ready(self._start_timeout)
        return pod

    async def _start_image(self, spec: PodSpec, image: ImageLaunch) -> LocalPod:
        if not self._privileged:
            raise PodStartError("image apps need a server running as root to contain them")
        if self._image_tools_missing:
            raise PodStartError(
                "image apps cannot run on this server: "
                f"{', '.join(self._image_tools_missing)} not installed"
            )
        rootfs = await self._images.rootfs(image, self._pull_credentials(spec, image))
        pod = await self._new_pod(spec.resources, ImagePod)
        assert isinstance(pod, ImagePod)
        pod.spec = spec
        await pod.start_container(
            image=image,
            rootfs=rootfs,
            env=_app_env(spec),
            tmp_mb=tmp_size_mb(spec.resources.memory_mb),
            edge=self._edge,
            apps_domain=self._apps_domain,
            trust_dir=self._trust_dir,
            rlimit_data_mb=0 if self._cgroups.has_memory else spec.resources.memory_mb,
        )
        await pod.wait_ready(self._start_timeout)
        return pod

    def _pull_credentials(self, spec: PodSpec, image: ImageLaunch) -> RegistryCredentials | None:
        """The app's organization's read-only credentials, for an image in
        the platform's registry (its own repositories only)."""
        if self._registry is None or image.reference.split("/", 1)[0] != self._registry.host:
            return None
        return self._registry.pull_credentials(spec.app_id.split("/", 1)[0])

    async def _new_pod(self, resources: Resources, kind: type[LocalPod] = LocalPod) -> LocalPod:
        """A pod's folder, uid, socket tmpfs and limited cgroups, not yet
        running; raises PodStartError (having undone the rest) if any of
        them cannot be had."""
        pod_id = f"pod{next(self._ids)}-{uuid.uuid4().hex[:6]}"
        pod_dir = self.pods_dir / pod_id
        uid = self._uids.take()
        cgroup = self._cgroups.group(pod_id)
        pod = kind(
            pod_id=pod_id,
            pod_dir=pod_dir,
            cgroup=cgroup,
            sink=self._sink,
            sandboxed=self._bwrap is not None,
            uid=uid,
            on_exit=lambda: self._uids.give_back(uid),
        )
        try:
            await asyncio.to_thread(self._make_pod_dir, pod_dir, uid)
            cgroup.limit(resources.memory_mb, resources.cpu_millicores)
        except (OSError, LimitNotApplied) as exc:
            await pod.stop(0)
            raise PodStartError(f"cannot prepare the pod: {exc}") from exc
        self._pods.add(pod)
        self._reapers.spawn(self._forget(pod), name=pod_id)
        return pod

    def _make_pod_dir(self, pod_dir: Path, uid: int) -> None:
        pod_dir.mkdir(mode=0o700)
        run_dir = pod_dir / "run"
        run_dir.mkdir()
        if self._bwrap is not None and self._privileged:
            mounts.mount_tmpfs(run_dir, size_kib=RUN_TMPFS_KIB, uid=uid, gid=uid)

    async def _forget(self, pod: LocalPod) -> None:
        await pod.wait()
        self._pods.discard(pod)
        if pod.spec is not None and not self._closed:
            self._share_cpu(_organization(pod.spec))

    async def _launch(
        self,
        pod: LocalPod,
        manifest: LaunchManifest,
        argv: list[str],
        env: dict[str, str],
        code_dir: Path,
        resources: Resources,
    ) -> None:
        prefix: list[str] = []
        pass_fds: tuple[int, ...] = ()
        if self._bwrap:
            socket = f"{RUN_MOUNT}/{pod.socket_path.name}"
            scratch = "/tmp"
            policy = Policy(
                uid=pod.uid,
                tmp_mb=tmp_size_mb(resources.memory_mb),
                ro_paths=manifest.ro_paths,
                ro_binds=[(code_dir, CODE_MOUNT)],
                rw_binds=[(pod.run_dir, RUN_MOUNT)],
                cgroup_binds=[
                    (path, f"/sys/fs/cgroup/{controller}")
                    for controller, path in pod.cgroup.paths.items()
                    if controller in ("memory", "cpu")
                ],
                hostname="pod",
            )
            filter_fd = seccomp.program_fd()
            pass_fds = (filter_fd,)
            prefix = command(self._bwrap, policy, filter_fd)
        else:
            socket = str(pod.socket_path)
            scratch = str(pod.dir / "tmp")
            (pod.dir / "tmp").mkdir()
        full_env = {
            **env,
            **manifest.env,
            **BASE_ENV,
            "HOME": scratch,
            "TMPDIR": scratch,
            SOCKET_ENV: socket,
        }
        full_env.setdefault(MAX_CONCURRENCY_ENV, "1")
        rlimit = 0 if self._cgroups.has_memory else resources.memory_mb
        try:
            await pod.launch([*prefix, *argv], full_env, rlimit, pass_fds)
        except OSError as exc:
            raise PodStartError(f"cannot start the pod: {exc}") from exc
        finally:
            for fd in pass_fds:
                os.close(fd)


def _organization(spec: PodSpec) -> str:
    return spec.app_id.partition("/")[0]


def _app_env(spec: PodSpec) -> dict[str, str]:
    """The app's env and the platform's variables about it."""
    return {**spec.env, **app_identity_env(spec)}


def _remove_leftovers(pods_dir: Path) -> None:
    """Remove what pods of a server that died left behind (folders, socket
    mounts): no live pod of this backend exists yet, and one state folder
    belongs to one server."""
    mounts.unmount_under(pods_dir)
    for entry in pods_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _seed_code_slot(slot: Path, files: tuple[tuple[str, bytes], ...]) -> None:
    """A pre-started pod's code directory, holding only the files its runtime
    reads when it starts (the manifest's ``prestart_files``)."""
    slot.mkdir()
    for name, content in files:
        path = slot / name
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o644)


def _link_tree(src: Path, dst: Path) -> None:
    """Make ``src``'s files appear under ``dst``: hard links where the file
    system allows (instant, no extra space), copies where it does not. A
    file already there is one the pod was seeded with, whose content is part
    of its pool's key, so it is the artifact's own and is left alone."""

    def link_or_copy(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except FileExistsError:
            pass
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link_or_copy, dirs_exist_ok=True)
