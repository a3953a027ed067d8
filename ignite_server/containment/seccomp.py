"""The system-call filter every sandboxed process runs under.

Default-deny, in the manner of the profiles container runtimes ship
(containerd's and Docker's default): the calls an ordinary program uses are
allowed, everything else fails with ``EPERM``. What that keeps out of reach:
mounting and every other file-system-namespace call, new namespaces of any
kind (``unshare``, ``setns``, ``clone`` with namespace flags: so no nested
user namespace and no ``unshare -r``), ``ptrace`` and the cross-process
memory calls, the kernel keyring, ``bpf``, ``perf_event_open``, ``io_uring``,
module loading, ``kexec``, ``reboot``, clock and host-name changes, and the
file-handle calls that bypass path permissions.

Two refinements beyond a plain allow list:

- setuid and setgid bits cannot be set: ``chmod``/``fchmod``/``fchmodat`` and
  file creation (``open``/``openat``/``creat`` with ``O_CREAT``) are allowed
  only with a mode that has neither bit, so no file a sandboxed process
  writes can become a privileged program anywhere, whatever the mount;
- ``clone3`` answers ``ENOSYS`` rather than ``EPERM``: its flags live in
  memory a filter cannot read, and on ``ENOSYS`` the C library falls back to
  ``clone``, whose flags the filter checks.

The 32-bit system-call ABIs are refused outright (libseccomp kills a thread
that uses an architecture the filter was not built for).

The filter is compiled once per process with libseccomp (through
``pyseccomp``) and handed to bubblewrap as a BPF program in a memfd. Image
pods run under an OCI runtime instead, which takes the same policy as the
``linux.seccomp`` section of a container's ``config.json`` (``oci_profile``)
and compiles it with its own libseccomp.
"""

from __future__ import annotations

import errno
import functools
import os
import platform
import tempfile
from typing import Any


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: Calls a program may make, as container runtimes' default profiles allow
#: them (minus those that need a capability the sandbox never has).
ALLOWED = _names("""
accept accept4 access alarm arch_prctl bind brk capget capset chdir chown
clock_getres clock_gettime clock_nanosleep close close_range connect
copy_file_range dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_pwait
epoll_pwait2 epoll_wait eventfd eventfd2 execve execveat exit exit_group
faccessat faccessat2 fadvise64 fallocate fchdir fchown fchownat fcntl
fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstatfs
fsync ftruncate futex futex_waitv futimesat getcpu getcwd getdents getdents64
getegid geteuid getgid getgroups getitimer getpeername getpgid getpgrp getpid
getppid getpriority getrandom getresgid getresuid getrlimit get_robust_list
getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday
getuid getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel ioctl io_destroy io_getevents io_pgetevents ioprio_get ioprio_set
io_setup io_submit kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lgetxattr link linkat listen listxattr llistxattr
lremovexattr lseek lsetxattr lstat madvise membarrier memfd_create mincore
mkdir mkdirat mlock mlock2 mlockall mmap mprotect mq_getsetattr mq_notify
mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap nanosleep newfstatat pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pwrite64
pwritev pwritev2 read readahead readlink readlinkat readv recvfrom recvmmsg
recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall
rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
sched_getscheduler sched_rr_get_interval sched_setaffinity sched_setattr
sched_setparam sched_setscheduler sched_yield seccomp select semctl semget
semop semtimedop sendfile sendmmsg sendmsg sendto setfsgid setfsuid setgid
setgroups setitimer setpgid setpriority setregid setresgid setresuid setreuid
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address
setuid setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
signalfd4 socket socketpair splice stat statfs statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timer_getoverrun timer_gettime timer_settime timerfd_create timerfd_gettime
timerfd_settime times tkill truncate umask uname unlink unlinkat utime
utimensat utimes vfork vmsplice wait4 waitid write writev
""")

#: Calls refused on purpose (they fall to the default action); listed so a
#: test can check each one stays refused.
REFUSED = _names("""
mount umount2 pivot_root chroot unshare setns ptrace process_vm_readv
process_vm_writev kcmp pidfd_getfd keyctl add_key request_key bpf
perf_event_open io_uring_setup io_uring_enter io_uring_register userfaultfd
kexec_load kexec_file_load init_module finit_module delete_module reboot swapon
swapoff sethostname setdomainname iopl ioperm syslog acct quotactl
open_by_handle_at name_to_handle_at fanotify_init mknod mknodat fsopen fsmount
fsconfig fspick move_mount open_tree mount_setattr clock_settime settimeofday
clock_adjtime adjtimex personality get_mempolicy set_mempolicy mbind
move_pages migrate_pages lookup_dcookie vhangup nfsservctl
""")

#: Namespace flags of clone(2): a clone carrying any of them is refused.
CLONE_NAMESPACE_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)
#: The mode bits no sandboxed process may set.
PRIVILEGE_BITS = 0o6000
#: open(2) flags that make it create a file (O_CREAT, __O_TMPFILE).
CREATE_FLAGS = 0o100 | 0o20000000
#: Calls that set a mode, and which of their arguments holds it.
MODE_ARGUMENT = {"chmod": 1, "fchmod": 1, "fchmodat": 2, "creat": 1}
#: Calls that may create a file: (flags argument, mode argument).
CREATE_ARGUMENTS = {"open": (1, 2), "openat": (2, 3)}

#: The OCI name of the native system-call ABI, by ``platform.machine()``.
OCI_ARCHITECTURES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}


class SeccompUnavailable(RuntimeError):
    """libseccomp (or its Python binding) is missing on this host."""


@functools.cache
def program() -> bytes:
    """The compiled BPF program (built once per process)."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as exc:  # OSError: libseccomp.so.2 missing
        raise SeccompUnavailable(f"libseccomp is not usable: {exc}") from exc
    arch = sc.system_arch()
    refused = sc.ERRNO(errno.EPERM)
    rules = sc.SyscallFilter(refused)

    def known(name: str) -> bool:
        # Newer calls than this libseccomp knows are simply not allowed.
        return sc.resolve_syscall(arch, name) >= 0

    for name in ALLOWED:
        if known(name):
            rules.add_rule(sc.ALLOW, name)
    rules.add_rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_NAMESPACE_FLAGS, 0))
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for name, index in MODE_ARGUMENT.items():
        rules.add_rule(sc.ALLOW, name, sc.Arg(index, sc.MASKED_EQ, PRIVILEGE_BITS, 0))
    for name, (flags, mode) in CREATE_ARGUMENTS.items():
        # Either it creates nothing, or what it creates has no privilege bit.
        rules.add_rule(sc.ALLOW, name, sc.Arg(flags, sc.MASKED_EQ, CREATE_FLAGS, 0))
        rules.add_rule(sc.ALLOW, name, sc.Arg(mode, sc.MASKED_EQ, PRIVILEGE_BITS, 0))
    with tempfile.TemporaryFile() as out:
        rules.export_bpf(out)
        out.seek(0)
        return out.read()


def program_fd() -> int:
    """A fresh file descriptor holding the program, positioned at its start
    (bubblewrap reads it to the end, so every sandbox needs its own); the
    caller closes it once the sandbox has started."""
    fd = os.memfd_create("ignite-seccomp", os.MFD_CLOEXEC)
    data = program()
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def oci_profile(privilege_bits: bool = False) -> dict[str, Any]:
    """The policy as an OCI runtime-spec ``linux.seccomp`` object, the same
    rules as ``program``: in that format the conditions of one entry must
    all hold, so each alternative of a call is an entry of its own.

    ``privilege_bits`` allows setting setuid and setgid bits: for the
    ``RUN`` steps of image builds, where package managers install such
    files into the image (which never runs them with privilege: local image
    pods get them stripped, Kubernetes pods cannot escalate)."""

    def masked_eq(index: int, mask: int) -> dict[str, Any]:
        return {"index": index, "value": mask, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}

    allow = "SCMP_ACT_ALLOW"
    syscalls: list[dict[str, Any]] = [
        {"names": list(ALLOWED), "action": allow},
        {"names": ["clone"], "action": allow, "args": [masked_eq(0, CLONE_NAMESPACE_FLAGS)]},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
    ]
    if privilege_bits:
        syscalls.append({"names": [*MODE_ARGUMENT, *CREATE_ARGUMENTS], "action": allow})
    else:
        for name, index in MODE_ARGUMENT.items():
            syscalls.append(
                {"names": [name], "action": allow, "args": [masked_eq(index, PRIVILEGE_BITS)]}
            )
        for name, (flags, mode) in CREATE_ARGUMENTS.items():
            syscalls.append(
                {"names": [name], "action": allow, "args": [masked_eq(flags, CREATE_FLAGS)]}
            )
            syscalls.append(
                {"names": [name], "action": allow, "args": [masked_eq(mode, PRIVILEGE_BITS)]}
            )
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.EPERM,
        # Only the native ABI: a 32-bit call (int 0x80, x32) is refused.
        "architectures": [OCI_ARCHITECTURES.get(platform.machine(), "SCMP_ARCH_X86_64")],
        "syscalls": syscalls,
    }
