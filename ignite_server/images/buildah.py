"""Dockerfile builds with buildah, contained like every other build step.

A Dockerfile's ``RUN`` steps are user code, and buildah needs more than an
ordinary build step may have (it mounts, and changes the owner of every
file an image holds), so it cannot run in the build sandbox of
builds/subprocess_build.py, and it must not run as host root either. It
runs, through user_namespace.py, as root of a user namespace mapped onto
IMAGE_BUILD_UID_COUNT host uids from IMAGE_BUILD_UID_BASE
(containment/identities.py):

- every process of the build, buildah and each ``RUN`` step alike, is a
  host uid of that range: never host root, no capability outside the
  namespace, ``no_new_privs``; files owned by other host uids (the server's
  state, PostgreSQL's data, signing keys) are closed to it as to any
  unprivileged user;
- it sees only the base system read-only (``/usr`` and its links,
  ``/etc``), ``/dev`` and ``/sys``, the build context read-only, this
  builder's cache folder (buildah's storage, its run folder, work folders)
  writable, and fresh tmpfs at ``/tmp``, ``/var/tmp``, ``/run`` and
  ``/dev/shm``; the host's tree is detached, so nothing else can be
  reached by path, even by a ``RUN`` step that escapes buildah's chroot;
- its processes have a pid namespace of their own, run in a cgroup of
  their own with the build's memory limit, stream their output to the
  build log and are killed, all of them, at the build's deadline
  (``run_step``);
- the network stays on: ``RUN pip install`` downloads, like the other
  runtimes' builds.

Inside, buildah uses ``--isolation chroot`` (no runtime: runc and crun
need more privilege than the namespace has) and the ``vfs`` storage driver
(no overlay mounts in a user namespace on this kernel) under the cache
folder, which keeps pulled base images between builds. A build leaves its
image as an OCI layout folder; pushing it is skopeo's job (skopeo.py),
outside the namespace, so the platform registry's credentials are never
within reach of user code. The built image is removed from the storage
afterwards; base images stay.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from ignite_server.builds.subprocess_build import (
    DEFAULT_MEMORY_MB,
    Deadline,
    StepResult,
    failure_reason,
    network_env,
    run_step,
)
from ignite_server.containment import identities
from ignite_server.containment.sandbox import SYSTEM_PATHS
from ignite_server.images import user_namespace
from ignite_server.ports.build_pipeline import BuildFailed
from ignite_server.ports.image_builder import DockerfileBuild

BUILDAH = "/usr/bin/buildah"
#: How long removing a built image from the storage may take.
CLEANUP_SECS = 60
#: Longest reason quoted from buildah in a one-line failure.
MAX_REASON = 300
_FAILED_STEP = re.compile(r'building at STEP "(?P<step>.*?)": (?P<why>.*)')


class Buildah:
    """Builds Dockerfiles into OCI layouts, with its storage under
    ``cache_dir``. ``insecure_registries`` are hosts base images may be
    pulled from over plain HTTP."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        insecure_registries: Sequence[str] = (),
        memory_mb: int = DEFAULT_MEMORY_MB,
    ) -> None:
        self.cache_dir = cache_dir
        self._insecure = tuple(insecure_registries)
        self._memory_mb = memory_mb

    @property
    def work_dir(self) -> Path:
        """Where builds put their OCI layouts (inside the build's view)."""
        return self.cache_dir / "work"

    async def build(self, request: DockerfileBuild, layout: Path, deadline: Deadline) -> None:
        """Build ``request`` into the OCI layout folder ``layout`` (below
        ``work_dir``); BuildFailed when the Dockerfile does not build."""
        if not identities.privileged():
            raise BuildFailed("Dockerfile builds need a server that runs as root")
        dockerfile = checked_dockerfile(request.context_dir, request.dockerfile)
        await asyncio.to_thread(self._prepare, request.context_dir)
        tag = f"localhost/ignite-build-{uuid.uuid4().hex}"
        context = str(request.context_dir.resolve())
        argv = [
            "build", "--isolation", "chroot",
            "-f", dockerfile, "-t", tag,
        ]  # fmt: skip
        for name, value in request.build_args.items():
            argv += ["--build-arg", f"{name}={value}"]
        try:
            result = await self._buildah([*argv, context], context, request.log, deadline)
            if result.returncode != 0:
                raise BuildFailed(_failure(result, self._memory_mb))
            result = await self._buildah(
                ["push", "--quiet", tag, f"oci:{layout}"], context, request.log, deadline
            )
            if result.returncode != 0:
                raise BuildFailed(failure_reason("saving the built image", result))
        finally:
            # Quietly: after a failed build there is no image to remove.
            await self._buildah(["rmi", "--force", tag], context, _discard, Deadline(CLEANUP_SECS))

    async def _buildah(
        self, argv: list[str], context: str, log: Callable[[str], None], deadline: Deadline
    ) -> StepResult:
        storage = [
            "--root", str(self.cache_dir / "storage"),
            "--runroot", str(self.cache_dir / "run"),
            "--storage-driver", "vfs",
        ]  # fmt: skip
        return await run_step(
            [*self._namespace(context), BUILDAH, *storage, *argv],
            cwd=Path(context),
            env=self._env(),
            log=log,
            deadline=deadline,
            memory_mb=self._memory_mb,
        )

    def _namespace(self, context: str) -> list[str]:
        """The argv prefix that runs a command in the build's namespace."""
        argv = [
            sys.executable, "-I", user_namespace.__file__,
            "--uid-base", str(identities.IMAGE_BUILD_UID_BASE),
            "--count", str(identities.IMAGE_BUILD_UID_COUNT),
        ]  # fmt: skip
        for path in (*SYSTEM_PATHS, "/etc", context):
            argv += ["--ro", path]
        argv += ["--rw", str(self.cache_dir.resolve())]
        for path in ("/tmp", "/var/tmp", "/run"):
            argv += ["--tmpfs", path]
        return [*argv, "--cwd", context, "--"]

    def _env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.cache_dir / "home"),
            # Image layers are staged here while pulled: on disk, not in a
            # tmpfs that would count against the memory limit.
            "TMPDIR": str(self.cache_dir / "tmp"),
            "CONTAINERS_REGISTRIES_CONF": str(self.cache_dir / "registries.conf"),
            **network_env(),
        }

    def _prepare(self, context_dir: Path) -> None:
        """The cache folders, owned by the namespace's root, and the context
        handed over to it (a checkout belongs to the build uid)."""
        owner = identities.IMAGE_BUILD_UID_BASE
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.cache_dir, *(self.cache_dir / name for name in _FOLDERS)):
            folder.mkdir(exist_ok=True)
            if folder.stat().st_uid != owner:
                os.chown(folder, owner, owner)
        os.chmod(self.cache_dir, 0o700)
        registries = self.cache_dir / "registries.conf"
        registries.write_text(_registries_conf(self._insecure))
        identities.hand_over(context_dir, owner)


#: Folders of the cache, each owned by the namespace's root.
_FOLDERS = ("storage", "run", "home", "tmp", "work")


def checked_dockerfile(context_dir: Path, dockerfile: str) -> str:
    """``dockerfile`` as a path inside the context; BuildFailed when it
    points outside (absolute, ``..``, or a symbolic link leading out)."""
    relative = Path(dockerfile or "Dockerfile")
    if relative.is_absolute() or ".." in relative.parts:
        raise BuildFailed(
            f"the Dockerfile path {dockerfile!r} must be relative to the build context, "
            "without '..'"
        )
    context = context_dir.resolve()
    target = (context / relative).resolve()
    if not target.is_relative_to(context):
        raise BuildFailed(f"the Dockerfile {dockerfile!r} leads outside the build context")
    if not target.is_file():
        raise BuildFailed(f"no Dockerfile {dockerfile!r} in the build context")
    return str(target)


def _discard(_line: str) -> None:
    pass


def _registries_conf(insecure: Sequence[str]) -> str:
    """buildah's registries.conf: short names are Docker Hub's, and the
    ``insecure`` hosts are reached over plain HTTP."""
    lines = [
        'unqualified-search-registries = ["docker.io"]',
        'short-name-mode = "permissive"',
    ]
    for host in insecure:
        lines += ["", "[[registry]]", f'location = "{host}"', "insecure = true"]
    return "\n".join(lines) + "\n"


def _failure(result: StepResult, memory_mb: int) -> str:
    """One line naming the Dockerfile step that failed, and why."""
    if not result.out_of_memory:
        for line in reversed(result.tail):
            found = _FAILED_STEP.search(line)
            if found:
                # Unknown instructions come with a dump of buildah's parser
                # state after " &".
                why = found["why"].split(" &", 1)[0][:MAX_REASON]
                return f"Dockerfile step {found['step'].strip()} failed: {why}"
        for line in reversed(result.tail):
            if line.startswith("Error: "):
                why = line.removeprefix("Error: ")[:MAX_REASON]
                return f"the Dockerfile did not build: {why}"
    return failure_reason("the Dockerfile build", result, memory_mb)
