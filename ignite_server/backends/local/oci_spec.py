"""The OCI runtime ``config.json`` of one image pod: the container gets the
same containment as every other pod (docs/local-pods.md), expressed in the
runtime-spec's terms rather than bubblewrap's.

- **identity**: the pod's own host uid and gid (the image's USER is
  ignored: no pod runs as root, nor as a uid another pod or host account
  has), no supplementary groups, every capability set empty,
  ``noNewPrivileges``;
- **namespaces**: pid, ipc, uts, mount, cgroup and network, the network one
  made by the server, empty but for loopback (the server reaches the app,
  and forwards the app's calls to the platform's edge, with sockets it
  makes inside: netns.py);
- **file system**: the image's root file system read-only (one unpacked copy
  shared by every pod of the digest, see image_cache.py), fresh ``/proc``
  and ``/dev``, and as the only writable places a ``/tmp`` that is a
  size-capped host tmpfs owned by the pod's uid and a capped ``/dev/shm``,
  both ``nosuid,nodev``; ``/etc/hosts`` and the CA folder come from the
  server; the pod's
  cgroup folders are shown read-only as in other pods; the kernel files
  runc's default spec masks or makes read-only are so here too;
- **system calls**: containment/seccomp.py's policy (``oci_profile``), which
  the runtime applies right before it execs the app;
- **limits**: none here (``linux.resources`` is left out): the runtime runs
  with its cgroup manager disabled inside the pod's own cgroups, which the
  pod's first process joined before it exec'd the runtime (pod.py).
"""

from __future__ import annotations

import resource
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ignite_server.containment import seccomp
from ignite_server.containment.sandbox import SHM_MB

#: The spec version the generated configurations follow.
OCI_VERSION = "1.0.2"
#: Open files per process: what a busy HTTP server needs, far below what
#: strains the host (the kernel charges file tables to the pod's memory);
#: never above the server's own hard limit, which a runtime without
#: CAP_SYS_RESOURCE could not raise.
NOFILE_LIMIT = 65536
#: Size of ``/dev``: it holds only the runtime's few device nodes.
DEV_TMPFS_KIB = 64
#: Kernel files hidden from the container, as in runc's default spec.
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
#: Kernel files the container may read but not write, as in runc's default.
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
#: Where the pod's cgroup folders appear, for programs that read their own
#: limits; the image cache creates these mount points in every rootfs.
CGROUP_MOUNTS = ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu")


@dataclass(frozen=True)
class ContainerSpec:
    """What differs between two image pods' configurations."""

    #: The app's argv (ENTRYPOINT + CMD), environment and working directory.
    args: Sequence[str]
    env: Mapping[str, str]
    cwd: str
    #: The pod's host uid (also its gid).
    uid: int
    #: The image's unpacked root file system, shared and read-only.
    rootfs: Path
    #: Host side of the pod's ``/tmp`` (a tmpfs owned by ``uid``).
    tmp_dir: Path
    #: The file shown as ``/etc/hosts``.
    hosts_file: Path
    #: (controller, host folder) of the pod's cgroups to show read-only.
    cgroups: Sequence[tuple[str, Path]] = ()
    hostname: str = "pod"
    #: A path naming the network namespace the server made for the pod
    #: (netns.py); "" for a new, empty one made by the runtime.
    netns: str = ""
    #: A host folder of CA files to show read-only at ``trust_mount``.
    trust_dir: Path | None = None
    trust_mount: str = ""


def config(spec: ContainerSpec) -> dict[str, Any]:
    """The ``config.json`` document for ``spec``."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = NOFILE_LIMIT if hard == resource.RLIM_INFINITY else min(NOFILE_LIMIT, hard)
    no_caps: dict[str, list[str]] = {
        key: [] for key in ("bounding", "effective", "inheritable", "permitted", "ambient")
    }
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": spec.uid, "gid": spec.uid, "additionalGids": []},
            "args": list(spec.args),
            "env": [f"{key}={value}" for key, value in spec.env.items()],
            "cwd": spec.cwd or "/",
            "capabilities": no_caps,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(spec.rootfs), "readonly": True},
        "hostname": spec.hostname,
        "mounts": _mounts(spec),
        "linux": {
            "namespaces": [
                *({"type": kind} for kind in ("pid", "ipc", "uts", "mount", "cgroup")),
                {"type": "network", **({"path": spec.netns} if spec.netns else {})},
            ],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
            "seccomp": seccomp.oci_profile(),
        },
    }


def _mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    sealed = ["nosuid", "noexec", "nodev"]
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": sealed},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            # Not nodev: the runtime creates /dev/null and the other
            # standard devices here (and no others: the app cannot mknod).
            "options": ["nosuid", "strictatime", "mode=755", f"size={DEV_TMPFS_KIB}k"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": [*sealed, "mode=1777", f"size={SHM_MB * 1024}k"],
        },
        {
            "destination": "/tmp",
            "type": "bind",
            "source": str(spec.tmp_dir),
            "options": ["rbind", "rw", "nosuid", "nodev"],
        },
        {
            "destination": "/etc/hosts",
            "type": "bind",
            "source": str(spec.hosts_file),
            "options": ["bind", "ro", *sealed],
        },
    ]
    if spec.trust_dir is not None and spec.trust_mount:
        mounts.append(
            {
                "destination": spec.trust_mount,
                "type": "bind",
                "source": str(spec.trust_dir),
                "options": ["rbind", "ro", *sealed],
            }
        )
    for controller, host_path in spec.cgroups:
        destination = f"/sys/fs/cgroup/{controller}"
        if destination in CGROUP_MOUNTS:
            mounts.append(
                {
                    "destination": destination,
                    "type": "bind",
                    "source": str(host_path),
                    "options": ["bind", "ro", *sealed],
                }
            )
    return mounts
