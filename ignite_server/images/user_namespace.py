"""Runs a command as root of a new user namespace whose uids are a range of
unprivileged host uids, in a file-system view of the caller's choosing.

This is the entry point of every image build (buildah.py), run as a script
by a server that is root, with the standard library only::

    python -I user_namespace.py --uid-base FIRST --count 65536 [--netns PATH] \\
        [--ro PATH]... [--rw PATH]... [--ro-at HOST INSIDE]... [--rw-at HOST INSIDE]... \\
        [--tmpfs PATH]... --cwd DIR -- COMMAND...

How, and why this way:

0. With ``--netns``, the script first joins that network namespace (the
   build's own, whose only way out is the platform's egress proxy), so
   everything below, buildah and every ``RUN`` step, is in it.
1. The script forks. The child unshares a user namespace (with mount, pid,
   ipc and uts namespaces owned by it) and waits; the parent, still host
   root, writes the child's ``uid_map`` and ``gid_map`` (namespace ids
   0..count-1 are host ids uid-base..uid-base+count-1) and lets it go.
   util-linux ``unshare --map-users`` cannot do this: it delegates to
   ``newuidmap``, which accepts only ranges listed in ``/etc/subuid``, and
   host configuration is not this server's to edit.
2. The child opens what the view will show (see 3) while it still has the
   host uid of root (unmapped in the namespace: it may enter folders only
   root may enter, like the server's state that holds the build's
   folders, but may create nothing). Then it becomes uid and gid 0 of the
   namespace: host uid ``uid-base``, which owns nothing on the host. It
   holds every capability, but only over the namespace's own objects: none
   outside it (a file owned by a host uid outside the range, the server's
   state for one, is as closed to it as to any unprivileged user), so
   nothing it runs can become host root. Only the parent stays host root,
   outside the namespace's pid namespace, where nothing inside can see it.
3. It forks the namespace's pid 1, which builds the view through the
   opened descriptors: a fresh tmpfs with the ``--ro`` paths read-only and
   the ``--rw`` paths writable, each at its own path (a symbolic link is
   recreated as one), or at the path ``--ro-at``/``--rw-at`` give,
   ``/dev`` (with a ``/dev/shm`` of its own) and ``/sys`` as on the host,
   a new ``/proc`` showing only the namespace's processes, and a tmpfs at
   each ``--tmpfs`` path. It then
   ``pivot_root``s into the view and detaches the host's tree, so nothing
   else of the host can be reached by path, not even by a process that
   escapes a ``chroot`` later. With ``no_new_privs`` set it executes the
   command.

When pid 1 exits, the kernel kills whatever is left in the namespace; the
exit status passes up unchanged (128 + n for a signal). A view that cannot
be built exits 125 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MNT_DETACH = 0x2
PR_SET_NO_NEW_PRIVS = 38
#: pivot_root has no C library wrapper; its number differs per architecture.
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
#: statvfs flags that a remount of a bind mount must keep: the kernel refuses
#: to clear a flag the namespace's owner set ("locked" flags).
LOCKED_FLAGS = {
    os.ST_NOSUID: MS_NOSUID,
    os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}
#: Exit status of a namespace or view that could not be set up.
SETUP_FAILED = 125

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source} on {target}",
    )


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="user_namespace")
    parser.add_argument("--uid-base", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--netns", default="")
    parser.add_argument("--ro", action="append", default=[])
    parser.add_argument("--rw", action="append", default=[])
    parser.add_argument("--ro-at", nargs=2, action="append", default=[])
    parser.add_argument("--rw-at", nargs=2, action="append", default=[])
    parser.add_argument("--tmpfs", action="append", default=[])
    parser.add_argument("--cwd", default="/")
    parser.add_argument("command", nargs="+")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Run the command as described in the module docstring."""
    args = _parse(argv)
    if args.netns:
        try:
            fd = os.open(args.netns, os.O_RDONLY | os.O_CLOEXEC)
            _check(_libc.setns(fd, CLONE_NEWNET), "setns")
            os.close(fd)
        except OSError as exc:
            print(f"image build namespace: network: {exc}", file=sys.stderr)
            return SETUP_FAILED
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(ready_r)
        os.close(go_w)
        try:
            _check(
                _libc.unshare(
                    CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
                ),
                "unshare",
            )
        except OSError as exc:
            print(f"image build namespace: {exc}", file=sys.stderr)
            os._exit(SETUP_FAILED)
        os.write(ready_w, b"1")
        if os.read(go_r, 1) != b"1":
            os._exit(SETUP_FAILED)
        os._exit(_as_namespace_root(args))
    os.close(ready_w)
    os.close(go_r)
    if os.read(ready_r, 1) == b"1":
        try:
            mapping = f"0 {args.uid_base} {args.count}\n"
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{child}/{name}", "w") as f:
                    f.write(mapping)
            os.write(go_w, b"1")
        except OSError as exc:
            print(f"image build namespace: mapping ids: {exc}", file=sys.stderr)
    os.close(go_w)
    _, status = os.waitpid(child, 0)
    return _exit_code(status)


def _as_namespace_root(args: argparse.Namespace) -> int:
    """In the new namespaces: become their root, start their pid 1, wait."""
    try:
        # Nothing mounted here may reach the host's mount tree, nor the
        # reverse.
        _mount("none", "/", None, MS_REC | MS_PRIVATE)
        sources = _open_sources(args)
        os.setresgid(0, 0, 0)
        os.setgroups([])
        os.setresuid(0, 0, 0)
    except OSError as exc:
        print(f"image build namespace: {exc}", file=sys.stderr)
        return SETUP_FAILED
    init = os.fork()
    if init == 0:
        try:
            _check(_libc.sethostname(b"build", 5), "sethostname")
            _enter_view(args, sources)
            _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
            os.chdir(args.cwd)
        except OSError as exc:
            print(f"image build namespace: {exc}", file=sys.stderr)
            os._exit(SETUP_FAILED)
        try:
            os.execvp(args.command[0], args.command)
        except OSError as exc:
            print(f"image build namespace: {args.command[0]}: {exc}", file=sys.stderr)
            os._exit(127)
    _, status = os.waitpid(init, 0)
    return _exit_code(status)


#: A path of the view and what it shows: an open descriptor of the host
#: path, or the target of a symbolic link; and whether it is writable.
Source = tuple[str, "int | str", bool]


def _open_sources(args: argparse.Namespace) -> list[Source]:
    """Open every path the view shows.

    The host uid is still root's here, unmapped in the namespace: enough to
    enter folders only root may enter (the server's state holds the build's
    folders), not enough to create a file. So the sources are opened now and
    mounted later through their descriptors, by the namespace's root.
    """
    sources: list[Source] = []
    for host, inside, writable in [
        *((path, path, False) for path in args.ro),
        *((host, inside, False) for host, inside in args.ro_at),
        *((host, inside, True) for host, inside in args.rw_at),
        *((path, path, True) for path in (*args.rw, "/dev", "/sys")),
    ]:
        if os.path.islink(host):
            sources.append((inside, os.readlink(host), writable))
        elif os.path.exists(host):
            sources.append((inside, os.open(host, os.O_PATH | os.O_CLOEXEC), writable))
    return sources


def _enter_view(args: argparse.Namespace, sources: list[Source]) -> None:
    """Build the view from ``sources`` and make it ``/``."""
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(0, f"pivot_root: unknown on {platform.machine()}")
    # The view is assembled on a tmpfs over /tmp: a folder every host has
    # and anyone may enter (hiding it is harmless: this mount namespace is
    # the build's own, and /tmp sources are open already).
    root = "/tmp"
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,uid=0,gid=0")
    # Before the binds: a bound path may lie below a tmpfs (/tmp).
    for path in args.tmpfs:
        os.makedirs(root + path, exist_ok=True)
        _mount("tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,uid=0,gid=0")
    for path, source, writable in sources:
        _bind(source, root + path, writable=writable)
    # The host's /dev/shm is shared by every host user: the build gets its own.
    _mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,uid=0,gid=0")
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(root + "/.host", exist_ok=True)
    _check(_libc.syscall(number, root.encode(), (root + "/.host").encode()), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.host", MNT_DETACH), "detach the host's tree")
    os.rmdir("/.host")


def _bind(source: int | str, inside: str, *, writable: bool) -> None:
    """Show ``source`` (an open path, or a symbolic link's target) at
    ``inside``."""
    os.makedirs(os.path.dirname(inside), exist_ok=True)
    if isinstance(source, str):
        os.symlink(source, inside)
        return
    origin = f"/proc/self/fd/{source}"
    if os.path.isdir(origin):
        os.makedirs(inside, exist_ok=True)
    else:
        open(inside, "a").close()
    _mount(origin, inside, None, MS_BIND | MS_REC)
    os.close(source)
    if not writable:
        kept = os.statvfs(inside).f_flag
        flags = sum(ms for st, ms in LOCKED_FLAGS.items() if kept & st)
        _mount("none", inside, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
