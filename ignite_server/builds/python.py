"""The Python build pipeline: source → artifact directory + launch manifest.

Python is interpreted, so the "build" is: copy the project to ``app/``,
install ``requirements.txt`` (if any) into ``deps/`` in the build sandbox
(domain/requirements.py says what the file may hold), and write
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
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from ignite_server.builds.subprocess_build import Deadline, Sandbox, network_env, run_step
from ignite_server.domain import requirements as app_requirements
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import RuntimeKind
from ignite_server.ports.build_pipeline import BuildFailed, BuildRequest
from ignite_server.ports.pod_protocol import MANIFEST_NAME as MANIFEST

#: The managed runtime's own files, mounted read-only into every pod.
RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtimes" / "python"
RUNTIME_FILE = "ignite_runtime.py"
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
    server's own interpreter, which has pip; it has the same version), in
    the build sandbox unless ``sandbox`` is False.
    """

    kind = RuntimeKind.PYTHON
    explicit_compile = False

    def __init__(
        self,
        interpreter: Path | None = None,
        pip_python: Path | None = None,
        *,
        sandbox: bool = True,
    ) -> None:
        self.interpreter = interpreter or default_interpreter()
        self.pip_python = pip_python or Path(sys.executable)
        self.sandbox = sandbox
        #: What pip needs to see: its (virtual) environment and the base
        #: installation the environment points into.
        self._pip_roots = sorted({Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()})

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
        try:
            # Checked at SaveDraft already; checked again for what was
            # stored before that rule, or reached the file another way.
            app_requirements.check(text.decode("utf-8", "replace"))
        except InvalidArgument as exc:
            raise BuildFailed(exc.message) from None
        key = hashlib.sha256(text + str(self.interpreter).encode()).hexdigest()
        cached = request.cache_dir / "envs" / key
        if cached.is_dir():
            request.log(f"requirements.txt: reusing the environment {key[:12]}")
            await asyncio.to_thread(_copy_tree, cached, deps)
            return
        request.log("requirements.txt: installing")
        staging = request.cache_dir / "envs" / f".{key}.{uuid.uuid4().hex}"
        work = request.cache_dir / "envs" / f".work-{uuid.uuid4().hex}"
        # pip sees the requirements file alone in an empty folder: nothing
        # of the app's code is within its reach.
        await asyncio.to_thread(_prepare_pip, text, staging, work, request.cache_dir / "pip")
        try:
            await self.run_pip(work, staging, request.cache_dir / "pip", request)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, staging, True)
            raise
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        try:
            staging.rename(cached)
        except OSError:
            # A concurrent build of the same requirements won; theirs is equal.
            await asyncio.to_thread(shutil.rmtree, staging, True)
        await asyncio.to_thread(_copy_tree, cached, deps)

    async def run_pip(
        self, work: Path, target: Path, pip_cache: Path, request: BuildRequest
    ) -> None:
        """``pip install -r requirements.txt`` of ``work`` into ``target``,
        in the build sandbox: as the build uid, with the network, seeing
        only the interpreter, ``work``, ``target`` and pip's cache."""
        argv = [
            str(self.pip_python), "-m", "pip", "install",
            "--disable-pip-version-check", "--no-input", "--isolated",
            # Wheels only: building an sdist would run the package's own
            # code (contained by the sandbox, but slow and never needed).
            "--only-binary", ":all:",
            "--cache-dir", str(pip_cache),
            "--target", str(target),
            "-r", "requirements.txt",
        ]  # fmt: skip
        # pip gets PATH, its home and how to reach the index; nothing else of
        # the server's environment.
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", **network_env()}
        sandbox = Sandbox(
            ro_paths=self._pip_roots,
            rw_paths=[work, target, pip_cache],
        )
        result = await run_step(
            argv,
            cwd=work,
            env=env,
            log=request.log,
            deadline=Deadline(request.timeout_secs),
            sandbox=sandbox if self.sandbox else None,
        )
        if result.returncode != 0:
            errors = [line for line in result.tail if line.startswith("ERROR:")]
            raise BuildFailed(
                "installing requirements.txt failed" + (f": {errors[-1]}" if errors else "")
            )


def _prepare_pip(requirements: bytes, staging: Path, work: Path, pip_cache: Path) -> None:
    for folder in (staging, work, pip_cache):
        folder.mkdir(parents=True, exist_ok=True)
    (work / "requirements.txt").write_bytes(requirements)


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
