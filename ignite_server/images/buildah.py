"""Dockerfile builds with buildah, in the build's jail.

A Dockerfile's ``RUN`` steps are user code, and buildah needs more than an
ordinary build step may have (it mounts, and changes the owner of every
file an image holds), so it runs, through user_namespace.py, as root of a
user namespace mapped onto a range of 65,536 host uids of its own, taken
for this build only from the server's block (containment/identities.py)
and given back when it ends:

- every process of the build, buildah and each ``RUN`` step alike, is a
  host uid of that range: never host root, no capability outside the
  namespace, ``no_new_privs``; files owned by other host uids (the server's
  state, PostgreSQL's data, another build's folders) are closed to it as to
  any unprivileged user;
- it sees only the base system read-only (``/usr`` and its links,
  ``/etc``), ``/dev`` and ``/sys``, the jail's folders (``/build/src``, the
  uploaded context, read-only; ``/build/work`` and ``/build/out`` writable), the base
  images the platform fetched for it (``/bases/<n>``, read-only), and fresh
  tmpfs at ``/tmp``, ``/var/tmp``, ``/run`` and ``/dev/shm``; the host's
  tree is detached, so nothing else can be reached by path, even by a
  ``RUN`` step that gets out of buildah's chroot;
- buildah's storage is the build's own (``/build/work/storage``, ``vfs``: no
  overlay mounts in a user namespace on this kernel), made empty for the
  build and deleted with it: a ``RUN`` step can leave nothing behind for
  another build, of its own organization or another;
- it is in the build's own network namespace: ``RUN`` steps reach the
  package registries through the egress proxy (buildah passes the proxy
  variables to them) and nothing else, not the platform's registry;
- the build never pulls (``--pull=never``): the base images its ``FROM``
  lines name were fetched by the platform (bases.py) and are loaded from
  ``/bases`` first, under the names the Dockerfile uses;
- ``RUN`` steps run with buildah's chroot isolation, with only the
  capabilities package managers need inside the namespace (CHOWN,
  DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID: no SYS_CHROOT, so no
  second ``chroot`` out of the first), under the platform's system-call
  filter (containment/seccomp.py, allowing the setuid bits package managers
  set on files in the image: the local backend strips them when it unpacks
  an image, and Kubernetes pods forbid privilege escalation);
- its processes run in a cgroup of their own with the build's memory limit,
  stream their output to the build log and are killed, all of them, at the
  build's deadline (``run_step``).

A build leaves its image as an OCI layout in ``/build/out/image``, which leaves
the jail as its one checked stream; pushing it is skopeo's job (skopeo.py),
outside, so the registry's credentials are never within reach of user code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from ignite_server.builds.jail import OUT, SRC, WORK, BuildJail
from ignite_server.builds.subprocess_build import (
    DEFAULT_MEMORY_MB,
    StepResult,
    failure_reason,
    run_step,
)
from ignite_server.containment import identities, seccomp
from ignite_server.containment.sandbox import SYSTEM_PATHS
from ignite_server.images import user_namespace
from ignite_server.images.bases import BaseImage
from ignite_server.images.skopeo import LAYOUT_NAME
from ignite_server.ports.build_pipeline import BuildFailed

BUILDAH = "/usr/bin/buildah"
#: Longest reason quoted from buildah in a one-line failure.
MAX_REASON = 300
#: Where the OCI layout of the built image is, inside the jail.
IMAGE_LAYOUT = f"{OUT}/image"
#: The server's files for buildah (registries.conf, the RUN steps'
#: system-call filter), inside the namespace.
CONFIG = "/ignite/buildah"
#: Capabilities buildah gives RUN steps by default that they do not keep.
DROPPED_CAPABILITIES = ("CAP_SYS_CHROOT", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE")
_FAILED_STEP = re.compile(r'building at STEP "(?P<step>.*?)": (?P<why>.*)')


class Buildah:
    """Builds Dockerfiles in builds' jails into OCI layouts."""

    def __init__(self, *, memory_mb: int = DEFAULT_MEMORY_MB) -> None:
        self._memory_mb = memory_mb

    async def build(
        self,
        jail: BuildJail,
        context: str,
        dockerfile: str,
        build_args: dict[str, str] | Sequence[tuple[str, str]],
        bases: Sequence[BaseImage],
    ) -> None:
        """Build the Dockerfile at ``dockerfile`` (a path in ``context``,
        both inside the jail) into IMAGE_LAYOUT; BuildFailed when it does
        not build."""
        if not identities.privileged():
            raise BuildFailed("Dockerfile builds need a server that runs as root")
        args = build_args.items() if isinstance(build_args, dict) else build_args
        async with _config_folder() as config:
            namespace = _Namespace(jail, config, bases, self._memory_mb)
            await namespace.run(
                ["/bin/mkdir", "-p", f"{WORK}/storage", f"{WORK}/run", f"{WORK}/tmp"], jail.log
            )
            for number, base in enumerate(bases):
                await self._load(namespace, number, base)
            tag = f"localhost/ignite-build-{uuid.uuid4().hex}"
            argv = [
                "build", "--pull=never", "--isolation", "chroot",
                "--security-opt", f"seccomp={CONFIG}/seccomp.json",
                *(f"--cap-drop={capability}" for capability in DROPPED_CAPABILITIES),
                "-f", dockerfile, "-t", tag,
            ]  # fmt: skip
            for name, value in args:
                argv += ["--build-arg", f"{name}={value}"]
            result = await namespace.buildah([*argv, context], jail.log)
            if result.returncode != 0:
                raise BuildFailed(_failure(result, self._memory_mb))
            result = await namespace.buildah(
                ["push", "--quiet", tag, f"oci:{IMAGE_LAYOUT}:{LAYOUT_NAME}"], jail.log
            )
            if result.returncode != 0:
                raise BuildFailed(failure_reason("saving the built image", result))

    async def _load(self, namespace: _Namespace, number: int, base: BaseImage) -> None:
        """Base image ``number`` into the build's storage, under the names a
        FROM line may use for it: as written, and by its repository."""
        lines: list[str] = []
        pulled = await namespace.buildah(
            ["pull", "--quiet", f"oci:/bases/{number}:{LAYOUT_NAME}"], lines.append
        )
        image_id = lines[-1].strip() if lines else ""
        if pulled.returncode != 0 or not image_id:
            raise BuildFailed(f"FROM {base.named}: the base image could not be loaded")
        names = {str(base.reference).split("@", 1)[0], f"{base.reference.repository}:ignite-base"}
        for name in sorted(names):
            await namespace.buildah(["tag", image_id, name], _discard)


class _Namespace:
    """Runs commands in one build's user namespace (user_namespace.py)."""

    def __init__(
        self, jail: BuildJail, config: Path, bases: Sequence[BaseImage], memory_mb: int
    ) -> None:
        self._jail = jail
        self._memory_mb = memory_mb
        first, count = jail.uid_range
        folders = jail.host_folders()
        argv = [
            sys.executable, "-I", user_namespace.__file__,
            "--uid-base", str(first), "--count", str(count),
            "--netns", jail.netns_path,
        ]  # fmt: skip
        for path in (*SYSTEM_PATHS, "/etc"):
            argv += ["--ro", path]
        if SRC in folders:
            argv += ["--ro-at", str(folders[SRC]), SRC]
        argv += ["--rw-at", str(folders[WORK]), WORK, "--rw-at", str(folders[OUT]), OUT]
        argv += ["--ro-at", str(config), CONFIG]
        for number, base in enumerate(bases):
            argv += ["--ro-at", str(base.layout), f"/bases/{number}"]
        for path in ("/tmp", "/var/tmp", "/run"):
            argv += ["--tmpfs", path]
        self._prefix = [*argv, "--cwd", WORK, "--"]

    async def run(self, argv: Sequence[str], log: Callable[[str], None]) -> StepResult:
        return await run_step(
            [*self._prefix, *argv],
            cwd=Path("/"),
            env=self._jail.env(
                PATH="/usr/sbin:/usr/bin:/sbin:/bin",
                # Image layers are staged here: on the build's volume, not
                # in a tmpfs that would count against the memory limit.
                TMPDIR=f"{WORK}/tmp",
                CONTAINERS_REGISTRIES_CONF=f"{CONFIG}/registries.conf",
            ),
            log=log,
            deadline=self._jail.deadline,
            memory_mb=self._memory_mb,
        )

    async def buildah(self, argv: Sequence[str], log: Callable[[str], None]) -> StepResult:
        storage = [
            "--root", f"{WORK}/storage",
            "--runroot", f"{WORK}/run",
            "--storage-driver", "vfs",
        ]  # fmt: skip
        return await self.run([BUILDAH, *storage, *argv], log)


@contextlib.asynccontextmanager
async def _config_folder() -> AsyncIterator[Path]:
    """A folder of the server's with registries.conf and the RUN steps'
    system-call filter, readable inside the namespace."""
    with tempfile.TemporaryDirectory(prefix="ignite-buildah-") as name:
        folder = Path(name)

        def write() -> None:
            (folder / "registries.conf").write_text(REGISTRIES_CONF)
            profile = seccomp.oci_profile(privilege_bits=True)
            (folder / "seccomp.json").write_text(json.dumps(profile))
            folder.chmod(0o755)

        await asyncio.to_thread(write)
        yield folder


def checked_dockerfile(context: str, dockerfile: str) -> str:
    """``dockerfile`` as a path inside ``context`` (a path in the jail);
    BuildFailed when it is absolute or climbs out with ``..`` (a symbolic
    link is resolved inside the jail, where it can reach nothing else)."""
    relative = Path(dockerfile or "Dockerfile")
    if relative.is_absolute() or ".." in relative.parts:
        raise BuildFailed(
            f"the Dockerfile path {dockerfile!r} must be relative to the build context, "
            "without '..'"
        )
    return f"{context.rstrip('/')}/{relative.as_posix()}"


def _discard(_line: str) -> None:
    pass


#: buildah's registries.conf: short names are Docker Hub's (base images are
#: loaded before the build, which never pulls).
REGISTRIES_CONF = 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n'


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
