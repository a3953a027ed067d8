"""Builds the runtime images pods of the Kubernetes backend run, as OCI image
archives, from files already on this machine: no registry, no base image.

* ``python``: Debian's own ``/usr/bin/python3.11`` with its standard library
  (tests, IDLE, tkinter and ensurepip left out), exactly the shared libraries
  ``ldd`` says the interpreter and its extension modules load, and the
  managed runtime (``runtimes/python/ignite_runtime.py``) at
  ``/opt/ignite/runtime``. It also serves as the init container that fetches
  a version's artifact (the backend passes the fetch script).
* ``native``: a glibc base for Go and Rust binaries: the dynamic loader,
  libc, libm, libgcc_s (Rust's unwinder) and the CA bundle. Go builds are
  static and need none of it; Rust's glibc-linked ones do.
* ``deno``: the ``deno`` the server builds Deno apps with (the one on
  ``PATH``, else the virtualenv's) at ``/usr/bin/deno``, with the libraries
  it loads; an artifact brings its vendored dependencies.

Both have a non-root user ``ignite`` (uid/gid 65532, as distroless'
``nonroot``), ``/code`` (the artifact's emptyDir mount) and ``/tmp`` (an
emptyDir with a size limit in the pod; the root filesystem is read-only).
Fixed mtimes and sorted entries: the same inputs give the same digests.

usage: build_runtime_images.py [--out DIR] [--load] [python] [native] [deno]
   --load  imports the archives into the running test bed (load_image.sh).
An operator pushes them to a real registry with e.g.
``skopeo copy oci-archive:python.tar docker://REGISTRY/ignite/python:3.11``.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "testbed"))
import oci_image  # noqa: E402

IMAGES = {
    "python": "ignite.local/runtime/python:3.11",
    "native": "ignite.local/runtime/native:1",
    "deno": "ignite.local/runtime/deno:2",
}
UID = 65532
PYTHON = "/usr/bin/python3.11"
STDLIB = "/usr/lib/python3.11"
#: Parts of the standard library no handler needs, left out for size.
STDLIB_SKIP = ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data")
NATIVE_LIBS = ("libc.so.6", "libm.so.6", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2")
LIB_DIR = "/usr/lib/x86_64-linux-gnu"
LOADER = "/usr/lib64/ld-linux-x86-64.so.2"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class Rootfs:
    """Entries of a one-layer root file system, keyed by path."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple] = {}
        for link, target in (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")):
            self.entries[link] = oci_image._entry(link, tarfile.SYMTYPE, 0o777, link=target)
        for d in ("usr", "usr/bin", "usr/lib", "usr/lib64", "etc", "code", "proc", "dev", "sys"):
            self.dir(d)
        self.entries["tmp"] = oci_image._entry("tmp", tarfile.DIRTYPE, 0o1777)
        passwd = f"root:x:0:0:root:/root:/bin/false\nignite:x:{UID}:{UID}:ignite:/tmp:/bin/false\n"
        self.data("etc/passwd", passwd.encode())
        self.data("etc/group", f"root:x:0:\nignite:x:{UID}:\n".encode())
        if os.path.exists(CA_BUNDLE):
            self.host_file(CA_BUNDLE)

    def dir(self, path: str) -> None:
        path = path.strip("/")
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in self.entries:
                self.entries[sub] = oci_image._entry(sub, tarfile.DIRTYPE, 0o755)

    def data(self, path: str, data: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        self.dir(os.path.dirname(path))
        self.entries[path] = oci_image._entry(path, tarfile.REGTYPE, mode, data)

    def host_file(self, host: str, at: str | None = None) -> None:
        """A host file at the same (merged-/usr) place, symlinks kept as such."""
        where = _usr_merged(at or host)
        if os.path.islink(host):
            target = os.readlink(host)
            self.dir(os.path.dirname(where))
            self.entries[where] = oci_image._entry(where, tarfile.SYMTYPE, 0o777, link=target)
            resolved = os.path.join(os.path.dirname(host), target)
            self.host_file(os.path.normpath(resolved))
            return
        mode = os.stat(host).st_mode & 0o755
        self.data(where, Path(host).read_bytes(), mode)

    def tree(self, host_dir: str, skip: tuple[str, ...] = ()) -> None:
        for dirpath, dirnames, filenames in os.walk(host_dir):
            rel = os.path.relpath(dirpath, host_dir)
            if rel == ".":
                dirnames[:] = [d for d in dirnames if d not in skip and d != "site-packages"]
            self.dir(_usr_merged(dirpath))
            for name in filenames:
                self.host_file(os.path.join(dirpath, name))

    def libraries_of(self, *binaries: str) -> None:
        """The shared libraries ``ldd`` says these load, and the loader."""
        for binary in binaries:
            out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
            for line in out.splitlines():
                path = line.split("=>")[-1].split("(")[0].strip()
                if path.startswith("/"):
                    self.host_file(path)
        self.host_file(LOADER)

    def layer(self) -> bytes:
        return oci_image._tar([self.entries[k] for k in sorted(self.entries)])


def _usr_merged(path: str) -> str:
    path = os.path.normpath(path).lstrip("/")
    for old, new in (("lib64/", "usr/lib64/"), ("lib/", "usr/lib/"), ("bin/", "usr/bin/")):
        if path.startswith(old):
            return new + path[len(old) :]
    return path


def python_image() -> tuple[Rootfs, dict]:
    fs = Rootfs()
    fs.host_file(PYTHON)
    fs.entries["usr/bin/python3"] = oci_image._entry(
        "usr/bin/python3", tarfile.SYMTYPE, 0o777, link="python3.11"
    )
    fs.tree(STDLIB, skip=STDLIB_SKIP)
    fs.libraries_of(PYTHON, *glob.glob(f"{STDLIB}/lib-dynload/*.so"))
    runtime = ROOT / "runtimes" / "python" / "ignite_runtime.py"
    fs.data("opt/ignite/runtime/ignite_runtime.py", runtime.read_bytes())
    return fs, _config(
        ["/usr/bin/python3", "-I", "-S", "-B", "/opt/ignite/runtime/ignite_runtime.py"]
    )


def native_image() -> tuple[Rootfs, dict]:
    fs = Rootfs()
    for name in NATIVE_LIBS:
        if os.path.exists(f"{LIB_DIR}/{name}"):
            fs.host_file(f"{LIB_DIR}/{name}")
    fs.host_file(LOADER)
    return fs, _config(["/code/app"])


def deno_image() -> tuple[Rootfs, dict]:
    fs = Rootfs()
    deno = shutil.which("deno") or str(ROOT / ".venv" / "bin" / "deno")
    fs.data("usr/bin/deno", Path(deno).read_bytes(), 0o755)
    fs.libraries_of(deno)
    return fs, _config(["/usr/bin/deno", "--version"])


def _config(cmd: list[str]) -> dict:
    return {
        "Cmd": cmd,
        "User": f"{UID}:{UID}",
        "WorkingDir": "/tmp",
        "Env": ["PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "images")
    parser.add_argument("--load", action="store_true")
    parser.add_argument("images", nargs="*", help="python, native, deno (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    archives = []
    for kind in args.images or list(IMAGES):
        if kind not in IMAGES:
            parser.error(f"unknown image {kind}; choose from {', '.join(IMAGES)}")
        fs, config = {"python": python_image, "native": native_image, "deno": deno_image}[kind]()
        out = args.out / f"{kind}.tar"
        oci_image.write_archive(IMAGES[kind], fs.layer(), config, str(out))
        archives.append(str(out))
        print(f"{IMAGES[kind]}: {out} ({out.stat().st_size // 1024} KiB)")
    if args.load:
        subprocess.run([str(ROOT / "tools" / "testbed" / "load_image.sh"), *archives], check=True)


if __name__ == "__main__":
    main()
