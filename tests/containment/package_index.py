"""A package index of the tests' own, on loopback: wheels and source
distributions made here, served as a PEP 503 simple index by
``python -m http.server``, so Python builds install from a registry no
other machine is involved in (and that only the builds' egress proxy and the
test itself reach)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.support import wait_for_listener


def wheel(name: str, version: str, files: Mapping[str, str]) -> tuple[str, bytes]:
    """A pure-Python wheel holding ``files`` (path → text): its file name
    and bytes."""
    dist = f"{name}-{version}.dist-info"
    contents = {
        **files,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path, text in contents.items():
            data = text.encode()
            archive.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(data)}")
        record.append(f"{dist}/RECORD,,")
        archive.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return f"{name}-{version}-py3-none-any.whl", out.getvalue()


def sdist(name: str, version: str, backend: str) -> tuple[str, bytes]:
    """A source distribution whose in-tree build backend is ``backend``
    (Python source): pip runs it to build the package."""
    top = f"{name}-{version}"
    files = {
        "pyproject.toml": "[build-system]\nrequires = []\n"
        'build-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": backend,
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return f"{top}.tar.gz", out.getvalue()


class PackageIndex:
    """A simple index under ``root``; ``add`` files, then ``serve``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "simple").mkdir(parents=True, exist_ok=True)
        (root / "files").mkdir(exist_ok=True)

    def add(self, project: str, filename: str, data: bytes) -> None:
        (self.root / "files" / filename).write_bytes(data)
        page = self.root / "simple" / project / "index.html"
        page.parent.mkdir(exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()
        links = page.read_text() if page.exists() else ""
        links += f'<a href="../../files/{filename}#sha256={digest}">{filename}</a>\n'
        page.write_text(links)

    @contextlib.contextmanager
    def serve(self, port: int) -> Iterator[str]:
        """Serve on 127.0.0.1:``port``; yields the index URL."""
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_listener(port, "the package index")
            yield f"http://127.0.0.1:{port}/simple"
        finally:
            server.terminate()
            server.wait(10)
