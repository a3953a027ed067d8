"""The Python build pipeline: source → artifact directory + launch manifest.

Python is interpreted, so the "build" is: copy the project to ``app/``,
install ``requirements.txt`` (if any) into ``deps/``, and write
``ignite-launch.json`` telling the pod backend how to start the managed
runtime (runtimes/python/ignite_runtime.py) on it.

Dependencies: each version gets its own ``deps/`` (no version can change
another's packages). Installing is the slow part, so the finished
environment is cached under ``cache_dir/envs/<sha256 of requirements.txt and
interpreter>`` and copied into later builds with the same requirements; pip's
own wheel cache lives in ``cache_dir/pip`` so even a new combination of known
packages installs without the network. A failed install fails the build with
pip's output in the build log.
"""

from __future__ import annotations

import asyncio
import compileall
import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from ignite_server.builds.protocol import BuildFailed, BuildRequest
from ignite_server.core.models import RuntimeKind

#: The managed runtime's own files, mounted read-only into every pod.
RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtimes" / "python"
RUNTIME_FILE = "ignite_runtime.py"
MANIFEST = "ignite-launch.json"
#: The pool name the local backend pre-starts runtime processes under.
PRESTART_POOL = "python3.11"
#: The Python version pods run (the server's own interpreter's).
PYTHON_VERSION = "3.11"


def default_interpreter() -> Path:
    """The interpreter pods run: the one under the server's own (virtual)
    environment, so the server, its builds and its pods agree on the Python
    version and ABI of installed wheels."""
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


class PythonPipeline:
    """Builds Python apps (seed 000's ``handler(payload, ctx)`` contract).

    ``interpreter`` runs the pods (default: the server's base interpreter);
    ``pip_python`` runs ``pip install --target`` at build time (default: the
    server's own interpreter, which has pip; it has the same version).
    """

    kind = RuntimeKind.PYTHON
    explicit_compile = False

    def __init__(self, interpreter: Path | None = None, pip_python: Path | None = None) -> None:
        self.interpreter = interpreter or default_interpreter()
        self.pip_python = pip_python or Path(sys.executable)

    async def build(self, request: BuildRequest) -> None:
        """Write the artifact for ``request.source_dir`` into ``request.out_dir``."""
        wanted = request.runtime.version
        if wanted not in ("", "3") and not (wanted + ".").startswith(PYTHON_VERSION + "."):
            raise BuildFailed(
                f"Python {request.runtime.version} is not available; this platform runs 3.11"
            )
        src = request.source_dir
        if not (src / "handler.py").is_file():
            raise BuildFailed("handler.py is missing at the root of the code")
        out = request.out_dir
        await asyncio.to_thread(_copy_tree, src, out / "app")
        await asyncio.to_thread(_precompile, out / "app", request.log)
        requirements = src / "requirements.txt"
        if requirements.is_file():
            await self._install(request, requirements, out / "deps")
        else:
            (out / "deps").mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._write_manifest, out)
        request.log("build finished")

    def manifest(self) -> dict[str, object]:
        """The launch manifest every Python artifact carries (pod-protocol.md)."""
        prefix = Path(sys.base_prefix).resolve()
        ro_paths = [str(RUNTIME_DIR)]
        if not str(prefix).startswith("/usr"):
            ro_paths.insert(0, str(prefix))
        return {
            "argv": [str(self.interpreter), "-I", "-S", "-B", str(RUNTIME_DIR / RUNTIME_FILE)],
            "ro_paths": ro_paths,
            "env": {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
            "prestart": PRESTART_POOL,
        }

    def _write_manifest(self, out: Path) -> None:
        (out / MANIFEST).write_text(json.dumps(self.manifest(), indent=2) + "\n")

    async def _install(self, request: BuildRequest, requirements: Path, deps: Path) -> None:
        text = await asyncio.to_thread(requirements.read_bytes)
        key = hashlib.sha256(text + str(self.interpreter).encode()).hexdigest()
        cached = request.cache_dir / "envs" / key
        if cached.is_dir():
            request.log(f"requirements.txt: reusing the environment {key[:12]}")
            await asyncio.to_thread(_copy_tree, cached, deps)
            return
        request.log("requirements.txt: installing")
        staging = request.cache_dir / "envs" / f".{key}.{uuid.uuid4().hex}"
        staging.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(self.pip_python), "-m", "pip", "install",
            "--disable-pip-version-check", "--no-input", "--isolated",
            # Wheels only: building an sdist would run the app's setup code
            # on the server, outside any sandbox.
            "--only-binary", ":all:",
            "--cache-dir", str(request.cache_dir / "pip"),
            "--target", str(staging),
            "-r", str(requirements),
        ]  # fmt: skip
        # pip gets PATH and nothing else of the server's environment.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(request.cache_dir)}
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            cwd=str(request.source_dir),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        last_error = ""
        try:
            async with asyncio.timeout(request.timeout_secs):
                async for raw in proc.stdout:
                    line = raw.decode("utf-8", "replace").rstrip()
                    request.log(line)
                    if line.startswith("ERROR:"):
                        last_error = line
                code = await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            await asyncio.to_thread(shutil.rmtree, staging, True)
            raise BuildFailed("installing requirements.txt took too long") from None
        if code != 0:
            await asyncio.to_thread(shutil.rmtree, staging, True)
            raise BuildFailed(
                "installing requirements.txt failed" + (f": {last_error}" if last_error else "")
            )
        try:
            staging.rename(cached)
        except OSError:
            # A concurrent build of the same requirements won; theirs is equal.
            await asyncio.to_thread(shutil.rmtree, staging, True)
        await asyncio.to_thread(_copy_tree, cached, deps)


def _precompile(app: Path, log: Callable[[str], None]) -> None:
    """Compile the app's modules now (pods cannot write ``__pycache__``, so
    otherwise every cold start would compile them again); a syntax error in
    handler.py fails the build instead of every activation."""
    try:
        compile((app / "handler.py").read_bytes(), "handler.py", "exec")
    except SyntaxError as exc:
        log(f"handler.py:{exc.lineno}: {exc.msg}")
        raise BuildFailed(f"handler.py line {exc.lineno}: {exc.msg}") from None
    # Other files may legitimately not compile (templates, scripts for other
    # tools); they are left for the import that needs them to report.
    compileall.compile_dir(app, quiet=2, workers=1)


def _copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
