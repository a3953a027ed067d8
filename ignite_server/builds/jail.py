"""One disposable sandbox per build: where every step of a build runs.

A build runs code its tenant wrote (a Cargo build script, a pip build
backend, a Dockerfile ``RUN`` step), so each build gets, for its lifetime
only:

- **its own uid**, taken from the server's block (containment/identities.py)
  when the build starts and given back when it ends, once nothing of the
  build runs any more; no other build or pod has it meanwhile;
- **its own folders**, on its organization's build volume
  (containment/volumes.py): ``/build/work`` (scratch, ``$HOME`` below it) and
  ``/build/out`` (what becomes the artifact), made by the server, empty, before the
  build's first process starts, and owned by the build's uid;
- **its organization's cache** at ``/cache``: the volume's ``cache/``,
  through an idmapped mount that shows it as the build's own (no tree is
  chowned); another organization's cache is not in the view at all;
- **the source** at ``/build/src``, read-only: the server writes it (uploaded code
  unpacked by the archive rules, or prepared by the pipeline) into a folder
  of its own before the build, and never reads anything back from a folder
  the build could write;
- **its own network namespace**, loopback only, whose one way out is the
  egress proxy (egress.py) that reaches the package registries;
- the paths inside are the same for every build (``/build/src``,
  ``/build/work``, ``/build/out``, ``/build/cache``), so no path of the
  server's state reaches a build log (and the build's own paths are shown
  relative to the app's code), and tools that key caches by path (Cargo)
  find their cache again.

What the build made leaves the jail one way: ``export`` runs ``tar`` on
``/build/out`` inside the jail and the server unpacks that stream by the archive
rules (domain/archives.py: regular files, folders and links that stay
inside; no devices, no special bits) into a folder of its own. When the
build ends its folders are deleted from inside the jail, as its uid, and its
mounts, namespace and uid are released.

Builds take turns for a slot (``BuildSpace.slots``, two on this kind of
machine); waiting for one does not count against a build's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import structlog

from ignite_server.builds.egress import PROXY_URL, EgressPolicy, EgressProxy
from ignite_server.builds.subprocess_build import (
    DEFAULT_MEMORY_MB,
    Deadline,
    StepResult,
    failure_reason,
    run_step,
    trust_env,
)
from ignite_server.containment import identities, idmap, sandbox
from ignite_server.containment.identities import UidBlock
from ignite_server.containment.netns import NetNamespace
from ignite_server.containment.volumes import BuildVolumes, Volume
from ignite_server.domain import archives
from ignite_server.domain.build_settings import DEFAULT_SLOTS
from ignite_server.domain.errors import InvalidArgument
from ignite_server.ports.build_pipeline import BuildFailed

log = structlog.get_logger(__name__)

#: The paths every build sees (see the module docstring), under one folder
#: that toolchains' own paths on the host are unlikely to be under.
ROOT = "/build"
SRC = f"{ROOT}/src"
WORK = f"{ROOT}/work"
OUT = f"{ROOT}/out"
CACHE = f"{ROOT}/cache"
HOME = f"{WORK}/home"
#: How the build's own paths are shown in its log: relative to the app's code.
_SHOWN_RELATIVE = tuple(
    prefix
    for root in (f"{WORK}/package", f"{WORK}/app", f"{WORK}/repo", OUT, SRC, WORK)
    for prefix in (f"file://{root}/", f"{root}/")
)
#: Size of a step's private /tmp: linkers and ``go build`` keep their work
#: files there; it counts against the step's memory limit.
TMP_MB = 1024
TAR = "/usr/bin/tar"
RM = "/usr/bin/rm"
#: Starts the lines a batch of steps (``BuildJail.run_steps``) prints about
#: its own progress: "<mark> start N" and "<mark> failed N STATUS".
_STEP_MARK = "\x1eignite-step"


class Step(NamedTuple):
    """One step of a batch: its name (for a failure), its command, the
    folder it runs in, and the line shown in the build log before it."""

    name: str
    argv: Sequence[str]
    cwd: str
    shown: str | None = None


class BuildSpace:
    """Where the builds of one server run: its organizations' build volumes
    (``state_dir/build-volumes``), its block of uids (``uids``, reserved by
    whoever made the space), the egress policy, and the slots builds take
    turns for."""

    def __init__(
        self,
        state_dir: Path,
        *,
        uids: UidBlock,
        quota_mb: int | None = None,
        egress: EgressPolicy | None = None,
        slots: int = DEFAULT_SLOTS,
    ) -> None:
        self.uids = uids
        self.volumes = BuildVolumes(
            state_dir.resolve() / "build-volumes",
            cache_owner=self.uids.cache_owner,
            **({"quota_mb": quota_mb} if quota_mb else {}),
        )
        if uids.moved:
            # Caches on disk belong to another block's cache owner.
            self.volumes.forget_all()
        self.egress = egress or EgressPolicy.allowing(["default"])
        self.slots = asyncio.Semaphore(slots)
        self._sweeps: dict[str, asyncio.Lock] = {}
        self._swept: set[str] = set()
        self.privileged = identities.privileged()

    @contextlib.asynccontextmanager
    async def jail(
        self,
        organization: str,
        log_line: Callable[[str], None],
        timeout_secs: float,
        *,
        source: Path | None = None,
        egress_urls: Sequence[str] = (),
        operator_urls: Sequence[str] = (),
        image_build: bool = False,
    ) -> AsyncIterator[BuildJail]:
        """A jail for one build of ``organization``, with ``source`` (a
        folder of the server's) at ``/build/src``; its deadline starts once it has
        a slot. ``egress_urls`` (the user's: a repository it clones) and
        ``operator_urls`` (the platform's configuration: a package index)
        add their hosts to what the build may reach. ``image_build``: the
        jail's uid is the first of a range of IMAGE_RANGE_SIZE uids (the
        root and ids of a Dockerfile build's user namespace)."""
        if self.slots.locked():
            log_line("waiting for a build slot")
        async with self.slots, self.volumes.use(organization) as volume:
            await self._sweep(volume)
            deadline = Deadline(timeout_secs)
            pool = self.uids.image_ranges if image_build else self.uids.builds
            taken = pool.take() if self.privileged else os.geteuid()
            uid = self.uids.image_range_base(taken) if image_build and self.privileged else taken
            size = identities.IMAGE_RANGE_SIZE if image_build else 1
            jail = BuildJail(self, volume, (uid, size), deadline, log_line, source)
            try:
                policy = self.egress.with_urls(egress_urls).with_urls(operator_urls, trusted=True)
                await jail.open(policy)
                yield jail
            finally:
                await jail.close()
                if self.privileged:
                    pool.give_back(taken)

    def close(self) -> None:
        """Unmount the build volumes (the server is stopping)."""
        self.volumes.close()

    async def _sweep(self, volume: Volume) -> None:
        """Once per organization and server: what builds of a server that
        died left on the volume (their folders, their cache mounts),
        emptied from inside a sandbox as the uid that wrote them."""
        lock = self._sweeps.setdefault(volume.organization, asyncio.Lock())
        async with lock:
            if volume.organization in self._swept:
                return
            leftovers = await asyncio.to_thread(_leftovers, volume)
            for folder, owner in leftovers:
                await _empty(folder, owner)
                await asyncio.to_thread(_remove_empty, folder)
            self._swept.add(volume.organization)

    @classmethod
    @contextlib.contextmanager
    def reserved(cls, state_dir: Path, **options: Any) -> Iterator[BuildSpace]:
        """A space with a block of uids of its own, given back afterwards:
        for builds outside a server (benchmarks, tests of the pipelines)."""
        uids = identities.reserve(state_dir)
        space = cls(state_dir, uids=uids, **options)
        try:
            yield space
        finally:
            space.close()
            uids.release()


class BuildJail:
    """One build's sandbox; see the module docstring."""

    def __init__(
        self,
        space: BuildSpace,
        volume: Volume,
        uid_range: tuple[int, int],
        deadline: Deadline,
        log_line: Callable[[str], None],
        source: Path | None,
    ) -> None:
        #: The build's uid, and how many uids from it are the build's (a
        #: Dockerfile build's user namespace maps a range).
        self.uid_range = uid_range
        self.uid = uid_range[0]
        self.deadline = deadline
        self._log_line = log_line
        self.organization = volume.organization
        self._space = space
        self._volume = volume
        self._source = source
        self._id = uuid.uuid4().hex
        #: The build's folder on the volume, and the idmapped cache's mount
        #: point beside it (both in the volume's root-owned builds/).
        self._dir = volume.builds / self._id
        self._cache = volume.builds / f"{self._id}.cache"
        self._netns: NetNamespace | None = None
        self._proxy: EgressProxy | None = None
        self._mounted = False

    async def open(self, policy: EgressPolicy) -> None:
        await asyncio.to_thread(self._make_folders)
        self._netns = await NetNamespace.create()
        self._proxy = EgressProxy(policy, self.log)
        await self._proxy.start(self._netns)

    def _make_folders(self) -> None:
        if self._source is not None:
            # The server's own folder: the build's uid reads it.
            os.chmod(self._source, 0o755)
        # builds/ and the build's own folder are root's, so nothing the build
        # runs can swap the folders below for links before the server binds
        # them; the folders it may write are empty when they become its own.
        self._dir.mkdir(mode=0o711)
        writable = [self._dir / "work", self._dir / "out", self._dir / "work" / "home"]
        for path in writable:
            path.mkdir(mode=0o755)
        self._cache.mkdir(mode=0o700)
        if self._space.privileged:
            for path in writable:
                os.chown(path, self.uid, self.uid)
            idmap.mount_mapped(
                self._volume.cache,
                self._cache,
                owner=self._space.uids.cache_owner,
                shown_as=self.uid,
            )
            self._mounted = True

    def log(self, line: str) -> None:
        """A line of the build log, the build's own paths relative."""
        self._log_line(_relative(line))

    @property
    def netns_path(self) -> str:
        """A path naming the build's network namespace."""
        assert self._netns is not None
        return self._netns.path

    def host_folders(self) -> dict[str, Path]:
        """The host folders behind SRC (when there is a source), WORK and
        OUT, for a namespace that mounts them itself (a Dockerfile build's)."""
        folders = {WORK: self._dir / "work", OUT: self._dir / "out"}
        if self._source is not None:
            folders[SRC] = self._source
        return folders

    def env(self, **more: str) -> dict[str, str]:
        """The environment every step starts from, plus ``more``."""
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": HOME,
            "HTTP_PROXY": PROXY_URL,
            "HTTPS_PROXY": PROXY_URL,
            "http_proxy": PROXY_URL,
            "https_proxy": PROXY_URL,
            **trust_env(),
            **more,
        }

    def policy(
        self,
        cwd: str = WORK,
        *,
        ro_paths: Sequence[Path | str] = (),
        ro_binds: Sequence[tuple[Path | str, str]] = (),
    ) -> sandbox.Policy:
        """The sandbox of one step: the jail's folders, ``ro_paths`` (the
        toolchain) read-only at their own paths, ``ro_binds`` read-only at
        the given paths."""
        assert self._netns is not None
        binds = [(str(host), inside) for host, inside in ro_binds]
        if self._source is not None:
            binds.insert(0, (str(self._source), SRC))
        return sandbox.Policy(
            uid=self.uid,
            tmp_mb=TMP_MB,
            netns=self._netns.path,
            ro_paths=[str(path) for path in ro_paths],
            ro_binds=binds,
            rw_binds=[
                (str(self._dir / "work"), WORK),
                (str(self._dir / "out"), OUT),
                (str(self._cache if self._mounted else self._volume.cache), CACHE),
            ],
            cwd=cwd,
            hostname="build",
        )

    async def run(
        self,
        step: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str = WORK,
        ro_paths: Sequence[Path | str] = (),
        ro_binds: Sequence[tuple[Path | str, str]] = (),
        memory_mb: int = DEFAULT_MEMORY_MB,
        on_line: Callable[[str], bool] | None = None,
        check: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> StepResult:
        """Run one step (``step`` names it in a failure); BuildFailed when it
        fails and ``check``. Its output goes to the build log, or ``log``."""
        result = await run_step(
            argv,
            cwd=Path("/"),
            env=env,
            log=log or self.log,
            deadline=self.deadline,
            memory_mb=memory_mb,
            policy=self.policy(cwd, ro_paths=ro_paths, ro_binds=ro_binds),
            on_line=on_line,
        )
        if check and result.returncode != 0:
            raise BuildFailed(failure_reason(step, result, memory_mb))
        return result

    async def run_steps(
        self,
        steps: Sequence[Step],
        *,
        env: Mapping[str, str],
        ro_paths: Sequence[Path | str] = (),
        memory_mb: int = DEFAULT_MEMORY_MB,
    ) -> None:
        """Run ``steps`` one after another in one sandbox, as ``run`` runs
        one: a sandbox starts once for all of them (a cached rebuild is
        mostly sandbox starts otherwise). The first that fails ends the
        batch with BuildFailed, named as ``run`` names a failed step."""
        script = []
        for index, step in enumerate(steps):
            script.append(f"printf '%s\\n' {shlex.quote(f'{_STEP_MARK} start {index}')}")
            if step.shown is not None:
                script.append(f"printf '%s\\n' {shlex.quote(step.shown)}")
            script.append(
                f"cd {shlex.quote(step.cwd)} && {shlex.join(step.argv)}"
                f" || {{ printf '%s %s\\n' {shlex.quote(f'{_STEP_MARK} failed {index}')} $?;"
                " exit 1; }"
            )
        current, status = 0, 0

        def progress(line: str) -> bool:
            nonlocal current, status
            if not line.startswith(_STEP_MARK):
                return False
            words = line[len(_STEP_MARK) :].split()
            if len(words) >= 2 and words[1].isdigit() and int(words[1]) < len(steps):
                current = int(words[1])
                if words[0] == "failed" and len(words) == 3 and words[2].isdigit():
                    status = int(words[2])
            return True

        result = await self.run(
            steps[0].name,
            ["/bin/sh", "-c", "\n".join(script)],
            env=env,
            cwd=steps[0].cwd,
            ro_paths=ro_paths,
            memory_mb=memory_mb,
            on_line=progress,
            check=False,
        )
        if result.returncode != 0:
            failed = StepResult(status or result.returncode, result.tail, result.out_of_memory)
            raise BuildFailed(failure_reason(steps[current].name, failed, memory_mb))

    async def read_text(self, path: str, max_bytes: int) -> str:
        """The text of the file at ``path`` in the jail (read there, as the
        build's uid); BuildFailed when it is missing or larger than
        ``max_bytes``."""
        content = bytearray()

        def keep(block: bytes) -> None:
            content.extend(block)
            if len(content) > max_bytes:
                raise BuildFailed(f"{path} is larger than {max_bytes} bytes")

        result = await run_step(
            ["/bin/cat", "--", path],
            cwd=Path("/"),
            env={"PATH": "/usr/bin:/bin"},
            log=_discard,
            deadline=self.deadline,
            policy=self.policy("/"),
            stdout=keep,
        )
        if result.returncode != 0:
            raise BuildFailed(f"no {_relative(path)} in the build context")
        return content.decode("utf-8", "replace")

    async def export(
        self, dest: Path, limits: archives.ArchiveLimits = archives.BUILD_OUTPUTS
    ) -> None:
        """Unpack what the build left in ``/build/out`` into ``dest`` (an empty
        folder of the server's): as one tar stream made inside the jail,
        checked entry by entry; BuildFailed when it breaks the rules."""
        with tempfile.TemporaryFile(dir=dest.parent) as spool:
            written = 0

            def keep(block: bytes) -> None:
                nonlocal written
                written += len(block)
                if written > limits.max_unpacked_bytes + 1024 * 1024:
                    raise BuildFailed(
                        f"the build's output is larger than {limits.max_unpacked_bytes} bytes"
                    )
                spool.write(block)

            result = await run_step(
                [TAR, "-C", OUT, "--numeric-owner", "-cf", "-", "."],
                cwd=Path("/"),
                env={"PATH": "/usr/bin:/bin"},
                log=self.log,
                deadline=self.deadline,
                policy=self.policy(OUT),
                stdout=keep,
            )
            if result.returncode != 0:
                raise BuildFailed(failure_reason("collecting the build's output", result))
            spool.seek(0)
            try:
                await asyncio.to_thread(archives.extract_tar, spool, dest, limits)
            except InvalidArgument as refused:
                raise BuildFailed(f"the build's output was refused: {refused.message}") from None

    async def close(self) -> None:
        """Stop the proxy, empty the folders from inside as the build's uid,
        then remove the (empty) folders and the mounts."""
        if self._proxy is not None:
            await self._proxy.close()
        try:
            if self._netns is not None:
                await self._dispose()
        finally:
            if self._netns is not None:
                self._netns.close()
            await asyncio.to_thread(self._remove_folders)

    async def _dispose(self) -> None:
        try:
            await run_step(
                [RM, "-rf", "--one-file-system", f"{WORK}/", f"{OUT}/"],
                cwd=Path("/"),
                env={"PATH": "/usr/bin:/bin"},
                log=_discard,
                deadline=Deadline(120),
                policy=self.policy("/"),
            )
        except BuildFailed as exc:
            log.warning("build.dispose_failed", build=self._id, error=exc.message)

    def _remove_folders(self) -> None:
        if self._mounted:
            with contextlib.suppress(OSError):
                idmap.unmount(self._cache)
        with contextlib.suppress(OSError):
            self._cache.rmdir()
        for path in (self._dir / "work", self._dir / "out", self._dir):
            with contextlib.suppress(OSError):
                # Empty by now; rmdir never follows anything.
                path.rmdir()
        if self._dir.exists() and not self._space.privileged:
            # A server that is not root owns what its builds wrote.
            shutil.rmtree(self._dir, ignore_errors=True)


def _leftovers(volume: Volume) -> list[tuple[Path, int]]:
    """The build folders on ``volume`` (no build of this server has run on
    it yet), and the uid each one's writable folders belong to; their cache
    mounts are detached on the way. builds/ and each build's folder are
    root's: listing them and reading their entries' owners follows nothing."""
    found = []
    for entry in sorted(volume.builds.iterdir()):
        if entry.name.endswith(".cache"):
            with contextlib.suppress(OSError):
                idmap.unmount(entry)
            with contextlib.suppress(OSError):
                entry.rmdir()
        elif entry.is_dir() and not entry.is_symlink():
            try:
                owner = (entry / "work").lstat().st_uid
            except OSError:
                owner = 0
            found.append((entry, owner))
    return found


async def _empty(folder: Path, owner: int) -> None:
    """Empty a dead build's folders from inside a sandbox, as their owner."""
    if not owner or not identities.privileged():
        return
    policy = sandbox.Policy(
        uid=owner,
        tmp_mb=1,
        rw_binds=[(str(folder / "work"), WORK), (str(folder / "out"), OUT)],
        cwd="/",
        hostname="build",
    )
    with contextlib.suppress(BuildFailed):
        await run_step(
            [RM, "-rf", "--one-file-system", f"{WORK}/", f"{OUT}/"],
            cwd=Path("/"),
            env={"PATH": "/usr/bin:/bin"},
            log=_discard,
            deadline=Deadline(120),
            policy=policy,
        )


def _remove_empty(folder: Path) -> None:
    for path in (folder / "work", folder / "out", folder):
        with contextlib.suppress(OSError):
            path.rmdir()
    if folder.exists():
        log.warning("build.leftover_kept", folder=str(folder))


def _relative(text: str) -> str:
    """``text`` with the build's own paths shown relative to the app's code."""
    for prefix in _SHOWN_RELATIVE:
        if prefix in text:
            text = text.replace(prefix, "")
    return text


def _discard(_line: str) -> None:
    pass
