"""The OCI runtime (crun) that starts image pods' containers, and the tools
that fetch images (skopeo, umoci).

crun runs in the foreground as the pod's process, started like any other
pod's (pod.py: ``/bin/sh`` joins the pod's cgroups, then execs it), with
its cgroup manager disabled so the container stays in those cgroups: the
memory limit, OOM detection, CPU accounting and ``kill_all`` work as for
every pod. Its state goes to the pod's own folder, removed with the pod.

crun refuses to start at all on a cgroup v1 host whose cgroup v2 hierarchy
(``/sys/fs/cgroup/unified``) holds a controller, even with its cgroup
manager disabled. On such a host it is started in a mount namespace of its
own where that hierarchy is unmounted (``unshare``; the host's mounts are
untouched); crun makes the container's mount namespace from that one.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

CGROUP2_HYBRID = Path("/sys/fs/cgroup/unified")
#: Tools image pods need besides the runtime itself.
IMAGE_TOOLS = ("crun", "skopeo", "umoci", "unshare")


def missing_tools() -> list[str]:
    """The tools of ``IMAGE_TOOLS`` that are not installed."""
    return [tool for tool in IMAGE_TOOLS if shutil.which(tool) is None]


@functools.cache
def _hides_cgroup2() -> bool:
    """Whether crun must not see the host's cgroup v2 hierarchy."""
    try:
        return bool((CGROUP2_HYBRID / "cgroup.controllers").read_text().split())
    except OSError:
        return False


def run_command(container_id: str, bundle: Path, state_dir: Path) -> list[str]:
    """The argv that runs the container of ``bundle`` in the foreground and
    exits with its status (128 + the signal when it was killed)."""
    crun = shutil.which("crun") or "crun"
    argv = [
        crun,
        "--root", str(state_dir),
        "--cgroup-manager=disabled",
        "run",
        "--bundle", str(bundle),
        container_id,
    ]  # fmt: skip
    if _hides_cgroup2():
        unshare = shutil.which("unshare") or "unshare"
        hide = f'umount -l {CGROUP2_HYBRID} && exec "$@"'
        argv = [
            unshare,
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            hide,
            "crun",
            *argv,
        ]
    return argv
