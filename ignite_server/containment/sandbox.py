"""The one sandbox for every process that runs user-controlled code: pods,
and the build steps that run package managers and compilers on user code.

A caller states a ``Policy`` (network or not, which host folders are seen
read-only or writable, how big ``/tmp`` is, which uid) and gets back the
argv prefix that runs a command under it. The layers, outermost first:

1. **cgroups** (cgroups.py): memory, CPU and task limits, joined before exec;
2. **namespaces** (bubblewrap): own mount, pid, ipc, uts and cgroup
   namespaces, and a network namespace holding only loopback unless the
   policy allows the network (builds that download dependencies);
3. **file system**: an empty root with the base system (``/usr`` and its
   ``/lib*``, ``/bin`` links), a few ``/etc`` files, the policy's read-only
   folders, a fresh ``/proc`` and ``/dev``; the only writable places are a
   size-capped ``/tmp`` (and ``/dev/shm``), private tmpfs mounts bubblewrap
   makes ``nosuid,nodev``, and the policy's writable folders (for pods, one
   capped tmpfs of mounts.py; for builds, the build's own folders);
4. **identity** (identities.py): as root, bubblewrap sets up the sandbox and
   ``setpriv`` then becomes the policy's unprivileged uid and gid with no
   supplementary groups, an empty capability bounding set and
   ``no_new_privs`` before the command runs, so no process of the command is
   ever host root or holds a capability, and setuid programs do nothing;
   bubblewrap's own supervisor processes keep uid 0 with every capability
   dropped. A server that is not root runs bubblewrap in a user namespace
   instead (``--unshare-user --disable-userns``), mapped to its own uid;
5. **system calls** (seccomp.py): a default-deny filter, applied by
   bubblewrap before the command (``setpriv``) runs.

Why root sets up and drops, rather than bubblewrap running unprivileged in
a user namespace throughout: an unprivileged bubblewrap must be able to
reach every folder it mounts, and the interpreter or toolchain often lives
under a folder only root may enter (``/root/.pyenv``).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ignite_server.containment import identities, seccomp

#: Top-level system paths that are (links into) the base system; mounted
#: read-only where they are directories, recreated where they are symlinks.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
#: Files of /etc any sandbox may read (TLS roots, time zone, MIME types).
ETC_PATHS = ("/etc/ssl", "/etc/ca-certificates", "/etc/localtime", "/etc/mime.types")
#: More of /etc for sandboxes with a network: name resolution.
NETWORK_ETC_PATHS = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/alternatives",
    "/etc/passwd",
    "/etc/group",
)
#: The program that drops to the sandbox's uid (util-linux, in /usr/bin).
SETPRIV = "/usr/bin/setpriv"
#: The program that joins a given network namespace (util-linux).
NSENTER = "/usr/bin/nsenter"
#: The uid a non-root server's sandboxes see themselves as.
UNPRIVILEGED_INNER_UID = 1000
#: The uid the start-up probe runs ``/bin/true`` as (``nobody``).
PROBE_UID = 65_534
#: ``/dev/shm`` cap: POSIX shared memory is for small coordination data.
SHM_MB = 16


class SandboxUnavailable(RuntimeError):
    """No sandbox can be made on this host (the message says why)."""


@dataclass(frozen=True)
class Policy:
    """What one sandboxed command may see and do."""

    #: Host uid (and gid) the command runs as when the server is root.
    uid: int
    #: Size of the private ``/tmp`` in MiB (also ``$HOME`` for pods).
    tmp_mb: int
    #: Whether the command may reach the network (builds fetching packages).
    network: bool = False
    #: A network namespace to join instead (a path naming it, netns.py):
    #: builds reach the package registries only through the egress proxy the
    #: server listens with inside it. Implies the network's /etc files.
    netns: str = ""
    #: Host folders seen read-only at the same path.
    ro_paths: Sequence[str | Path] = ()
    #: (host folder, path inside) seen read-only elsewhere.
    ro_binds: Sequence[tuple[str | Path, str]] = ()
    #: (host folder, path inside) the command may write.
    rw_binds: Sequence[tuple[str | Path, str]] = ()
    #: Working directory inside.
    cwd: str = "/tmp"
    hostname: str = "sandbox"
    #: Host cgroup folders shown read-only at these paths, so a program can
    #: read its own limits (``/sys/fs/cgroup/memory/memory.limit_in_bytes``).
    cgroup_binds: Sequence[tuple[Path, str]] = field(default_factory=tuple)


@functools.cache
def bubblewrap() -> str:
    """The bubblewrap binary, once a trivial sandbox ran with it (checked
    once per process); raises SandboxUnavailable saying why not."""
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
    why = _probe(found)
    if why:
        raise SandboxUnavailable(why)
    return found


def _probe(bwrap: str) -> str:
    """Run a trivial sandbox; return "" when it works, else why not."""
    try:
        fd = seccomp.program_fd()
    except seccomp.SeccompUnavailable as exc:
        return str(exc)
    policy = Policy(uid=PROBE_UID, tmp_mb=1)
    argv = [*command(bwrap, policy, fd), "/bin/true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, check=False, pass_fds=(fd,))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    finally:
        os.close(fd)
    if done.returncode != 0:
        return done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
    return ""


def command(bwrap: str, policy: Policy, seccomp_fd: int) -> list[str]:
    """The argv up to (and including) ``--``; the command's own argv follows.
    ``seccomp_fd`` (from ``seccomp.program_fd()``) must be passed to the
    child (``pass_fds``)."""
    argv = [
        bwrap,
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname", policy.hostname,
    ]  # fmt: skip
    if policy.netns:
        # nsenter (root) joins the namespace; bubblewrap then keeps it.
        argv = [NSENTER, f"--net={policy.netns}", "--", *argv]
    elif not policy.network:
        argv.append("--unshare-net")
    privileged = identities.privileged()
    if not privileged:
        argv += [
            "--unshare-user",
            "--disable-userns",
            "--uid", str(UNPRIVILEGED_INNER_UID),
            "--gid", str(UNPRIVILEGED_INNER_UID),
        ]  # fmt: skip
    for path in SYSTEM_PATHS:
        host = Path(path)
        if host.is_symlink():
            argv += ["--symlink", str(host.readlink()), path]
        elif host.is_dir():
            argv += ["--ro-bind", path, path]
    # bubblewrap running as root would make /etc 0700 for the files below.
    argv += ["--perms", "0755", "--dir", "/etc"]
    networked = policy.network or bool(policy.netns)
    for path in (*ETC_PATHS, *(NETWORK_ETC_PATHS if networked else ())):
        argv += ["--ro-bind-try", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += _tmpfs("/tmp", policy.tmp_mb) + _tmpfs("/dev/shm", SHM_MB)
    argv += _parents(
        [
            *map(str, policy.ro_paths),
            *(inside for _, inside in (*policy.ro_binds, *policy.cgroup_binds, *policy.rw_binds)),
        ]
    )
    for shared in policy.ro_paths:
        argv += ["--ro-bind", str(shared), str(shared)]
    for host_path, inside in policy.ro_binds:
        argv += ["--ro-bind", str(host_path), inside]
    for host_path, inside in policy.cgroup_binds:
        argv += ["--ro-bind-try", str(host_path), inside]
    for host_path, inside in policy.rw_binds:
        argv += ["--bind", str(host_path), inside]
    argv += ["--chdir", policy.cwd, "--seccomp", str(seccomp_fd), "--"]
    if privileged:
        argv += [
            SETPRIV,
            f"--reuid={policy.uid}",
            f"--regid={policy.uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    return argv


def _tmpfs(path: str, size_mb: int) -> list[str]:
    # bubblewrap mounts its tmpfs nosuid,nodev; 1777 so the dropped uid can
    # write it, with the sticky bit as on any shared /tmp.
    return ["--perms", "1777", "--size", str(size_mb * 1024 * 1024), "--tmpfs", path]


def _parents(destinations: Sequence[str]) -> list[str]:
    """Folders leading to the mount points, made traversable: bubblewrap
    running as root would make them 0700, which the sandbox's uid could not
    enter."""
    made: set[str] = {"/", "/tmp", "/dev", "/proc"}
    argv: list[str] = []
    for destination in destinations:
        for parent in reversed(Path(destination).parents):
            name = str(parent)
            mounted = any(
                name == top or name.startswith(top + "/")
                for top in (*SYSTEM_PATHS, "/etc", "/proc", "/dev")
            )
            if name not in made and not mounted:
                made.add(name)
                argv += ["--perms", "0755", "--dir", name]
    return argv
