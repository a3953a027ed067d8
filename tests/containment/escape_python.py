"""An app that tries every way out of its pod it can think of, and says
how each attempt went (the containment tests deploy it)."""

import ctypes
import errno
import json
import os
import subprocess

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000
PTRACE_ATTACH = 16
MIB = 1024 * 1024


def places():
    """Every place the pod may write."""
    return sorted(
        {"/tmp", "/dev/shm", os.environ["HOME"], os.path.dirname(os.environ["IGNITE_SOCKET"])}
    )


def attempt(fn):
    try:
        return "allowed: " + repr(fn())[:80]
    except OSError as exc:
        return "refused: " + errno.errorcode.get(exc.errno or 0, str(exc.errno))


def checked(result):
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def escape():
    out = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups()}
    with open("/proc/self/status") as source:
        status = source.read()
    out["status"] = {
        k: v.strip() for k, _, v in (line.partition(":") for line in status.splitlines())
    }
    for place in places():
        path = os.path.join(place, "planted")
        with open(path, "wb") as target, open("/bin/true", "rb") as source:
            target.write(source.read())
        out[f"chmod u+s {place}"] = attempt(lambda path=path: os.chmod(path, 0o4755))
        out[f"chmod g+s {place}"] = attempt(lambda path=path: os.chmod(path, 0o2755))
        out[f"fchmod u+s {place}"] = attempt(lambda path=path: _fchmod(path, 0o4755))
        out[f"create u+s {place}"] = attempt(
            lambda path=path: os.close(os.open(path + "-created", os.O_CREAT | os.O_WRONLY, 0o4755))
        )
        out[f"mode {place}"] = oct(os.stat(path).st_mode & 0o7777)
    out["unshare user"] = attempt(lambda: checked(libc.unshare(CLONE_NEWUSER)))
    out["unshare mount"] = attempt(lambda: checked(libc.unshare(CLONE_NEWNS)))
    out["mount"] = attempt(lambda: checked(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)))
    child = subprocess.Popen(["sleep", "30"])
    try:
        out["ptrace"] = attempt(lambda: checked(libc.ptrace(PTRACE_ATTACH, child.pid, None, None)))
    finally:
        child.kill()
        child.wait()
    run = subprocess.run(["unshare", "-r", "id", "-u"], capture_output=True, text=True)
    out["unshare -r"] = f"exit {run.returncode}: {run.stdout.strip()}"
    run = subprocess.run(["unshare", "-U", "true"], capture_output=True, text=True)
    out["unshare -U"] = f"exit {run.returncode}"
    out["setuid 0"] = attempt(lambda: os.setuid(0))
    return out


def _fchmod(path, mode):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def fill(limit_mb):
    """Write up to ``limit_mb`` MiB into each place; say where it stopped."""
    out = {}
    chunk = b"x" * MIB
    for place in places():
        path = os.path.join(place, "filler")
        written = 0
        try:
            with open(path, "wb") as target:
                while written < limit_mb * MIB:
                    target.write(chunk)
                    target.flush()
                    written += len(chunk)
            out[place] = f"wrote {written // MIB} MiB"
        except OSError as exc:
            out[place] = f"{errno.errorcode.get(exc.errno or 0)} after {written // MIB} MiB"
        finally:
            os.unlink(path)
    return out


def linger():
    """Start a process that outlives the request, named so the host can find it."""
    subprocess.Popen(["sleep", "3600.123"], start_new_session=True)
    return {"started": True}


def limits():
    with open("/sys/fs/cgroup/memory/memory.limit_in_bytes") as source:
        return {"limit": int(source.read())}


def allocate(mib):
    block = bytearray(mib * MIB)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return {"allocated_mib": mib}


def handler(payload, ctx):
    ask = json.loads(payload)
    action = ask["do"]
    if action == "escape":
        return escape()
    if action == "fill":
        return fill(ask["mb"])
    if action == "linger":
        return linger()
    if action == "limits":
        return limits()
    if action == "allocate":
        return allocate(ask["mib"])
    raise ValueError(action)
