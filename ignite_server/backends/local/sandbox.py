"""The pod sandbox: bubblewrap command lines, and whether bubblewrap works.

A sandboxed pod gets its own user, pid, ipc, uts, cgroup and network
namespaces (the network namespace holds only a loopback device, so the app
can open no connection to anything), a root file system made of the
system's ``/usr`` (and its ``/lib*``/``/bin`` links), the runtime's
read-only paths from the launch manifest, the app's code read-only at
``/code``, a private tmpfs ``/tmp``, and one writable directory,
``/run/ignite``, where the runtime creates its unix socket. Nothing else of
the host is visible: not the server's state directory, database, sockets,
nor another pod's code. The environment is exactly what the backend passes.

Users: the machines run the server as root. Inside the sandbox the app runs
as uid/gid 1000 in a user namespace of its own; bubblewrap drops every
capability, so the process holds no privilege over the host, and the only
files it can reach are the read-only mounts above and its own tmpfs.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

#: Where pods see their code, their socket directory, and their scratch space.
CODE_MOUNT = "/code"
RUN_MOUNT = "/run/ignite"
SANDBOX_UID = 1000
#: Top-level system paths that are (links into) the base system; mounted
#: read-only where they are directories, recreated where they are symlinks.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
#: Files of /etc a runtime may legitimately read (TLS roots, time zone).
ETC_PATHS = ("/etc/ssl", "/etc/ca-certificates", "/etc/localtime", "/etc/mime.types")


def find_bwrap() -> str | None:
    """The bubblewrap binary, if installed."""
    return shutil.which("bwrap")


def probe(bwrap: str) -> str:
    """Run a trivial sandbox; return "" when it works, else why not."""
    argv = [*command(bwrap, ro_paths=(), code_dir=None, run_dir=None), "/bin/true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
    return ""


def command(
    bwrap: str,
    *,
    ro_paths: Sequence[str],
    code_dir: Path | None,
    run_dir: Path | None,
) -> list[str]:
    """The bubblewrap argv up to (and including) ``--``; the pod's own argv follows."""
    argv = [
        bwrap,
        "--die-with-parent",
        "--new-session",
        "--unshare-all",
        "--unshare-user",
        "--uid", str(SANDBOX_UID),
        "--gid", str(SANDBOX_UID),
        "--hostname", "pod",
    ]  # fmt: skip
    for path in SYSTEM_PATHS:
        host = Path(path)
        if host.is_symlink():
            argv += ["--symlink", str(host.readlink()), path]
        elif host.is_dir():
            argv += ["--ro-bind", path, path]
    for path in ETC_PATHS:
        argv += ["--ro-bind-try", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in ro_paths:
        argv += ["--ro-bind", path, path]
    if code_dir is not None:
        argv += ["--ro-bind", str(code_dir), CODE_MOUNT]
    if run_dir is not None:
        argv += ["--bind", str(run_dir), RUN_MOUNT]
    argv += ["--chdir", "/tmp", "--"]
    return argv
