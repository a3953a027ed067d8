"""The Python build pipeline: source → artifact directory + launch manifest.

Python is interpreted, so the "build" is, in the build's jail (jail.py):
install ``requirements.txt`` (if any) into ``deps/``, copy the project to
``app/`` and byte-compile it; then the server unpacks the jail's output and
writes ``ignite-launch.json`` telling the pod backend how to start the
managed runtime (runtimes/python/ignite_runtime.py) on it.

Dependencies: pip never reads the app's own ``requirements.txt``. The
server checks it (domain/requirements.py says what it may hold, parsed as
pip parses it) and writes a file of its own with the accepted requirements
only; the index (``index_url``), wheels-only (unless the operator allows
source distributions) and every other option are on pip's command line.
Each version gets its own ``deps/`` (no version can change another's
packages). Installing is the slow part, so the organization's finished
environments are kept in its cache (``/build/cache/python/envs/<sha256 of the
requirements and interpreter>``) and copied into later builds with the same
requirements; pip's own wheel cache is ``/build/cache/python/pip``. Both are the
organization's alone: another organization's build never reads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from ignite_server.builds.egress import PROXY_URL
from ignite_server.builds.jail import CACHE, OUT, SRC, WORK, BuildJail, BuildSpace
from ignite_server.domain import requirements as app_requirements
from ignite_server.domain.build_settings import DEFAULT_PIP_INDEX_URL
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
#: Where the platform's requirements file is, inside the jail.
REQUIREMENTS_DIR = "/requirements"
ENVS = f"{CACHE}/python/envs"
PIP_CACHE = f"{CACHE}/python/pip"


def default_interpreter() -> Path:
    """The interpreter pods run: the one under the server's own (virtual)
    environment, so the server, its builds and its pods agree on the Python
    version and ABI of installed wheels."""
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


class PythonPipeline:
    """Builds Python apps (seed 000's ``handler(payload, ctx)`` contract) in
    ``space``'s jails.

    ``interpreter`` runs the pods (default: the server's base interpreter);
    ``pip_python`` runs ``pip install --target`` at build time (default: the
    server's own interpreter, which has pip; it has the same version);
    ``index_url`` is the package index; ``allow_sdists`` lets pip build
    source distributions (their build backends run in the jail).
    """

    kind = RuntimeKind.PYTHON
    explicit_compile = False

    def __init__(
        self,
        space: BuildSpace,
        interpreter: Path | None = None,
        pip_python: Path | None = None,
        *,
        index_url: str = DEFAULT_PIP_INDEX_URL,
        allow_sdists: bool = False,
    ) -> None:
        self.space = space
        self.interpreter = interpreter or default_interpreter()
        self.pip_python = pip_python or Path(sys.executable)
        self.index_url = index_url
        self.allow_sdists = allow_sdists
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
        # The server's own copy of the upload: read before any user code runs.
        await asyncio.to_thread(_check_handler, src / "handler.py", request.log)
        accepted = await asyncio.to_thread(_accepted_requirements, src / "requirements.txt")
        with tempfile.TemporaryDirectory(dir=request.out_dir.parent) as prepared:
            folder = Path(prepared)
            if accepted is not None:
                await asyncio.to_thread(_write_requirements, folder, accepted)
            async with self.space.jail(
                request.organization,
                request.log,
                request.timeout_secs,
                source=src,
                operator_urls=[self.index_url],
            ) as jail:
                if accepted is not None:
                    await self._install(jail, folder, accepted)
                await self._copy_app(jail)
                await jail.export(request.out_dir)
        await asyncio.to_thread(self._write_manifest, request.out_dir)
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
        (out / "deps").mkdir(exist_ok=True)
        (out / MANIFEST).write_text(json.dumps(self.manifest(), indent=2) + "\n")

    async def _copy_app(self, jail: BuildJail) -> None:
        """The app into ``/build/out/app``, byte-compiled (pods cannot write
        ``__pycache__``, so otherwise every cold start would compile it
        again; files that do not compile are left for the import that
        needs them to report)."""
        script = (
            f'cp -R {SRC}/. {OUT}/app && "$0" -m compileall -q -j 1 {OUT}/app >/dev/null; exit 0'
        )
        await jail.run(
            "copying the app",
            ["/bin/sh", "-c", script, str(self.interpreter)],
            env=jail.env(PYTHONDONTWRITEBYTECODE=""),
            ro_paths=self._pip_roots,
        )

    async def _install(self, jail: BuildJail, folder: Path, accepted: list[str]) -> None:
        key = hashlib.sha256(
            (app_requirements.render(accepted) + str(self.interpreter) + self.index_url).encode()
        ).hexdigest()
        env_dir = f"{ENVS}/{key}"
        reuse = await jail.run(
            "looking up the environment",
            ["/bin/sh", "-c", f'test -d "{env_dir}"'],
            env=jail.env(),
            check=False,
        )
        if reuse.returncode == 0:
            jail.log(f"requirements.txt: reusing the environment {key[:12]}")
        else:
            jail.log("requirements.txt: installing")
            staging = f"{ENVS}/.{key}.{uuid.uuid4().hex}"
            await self.run_pip(jail, folder, staging)
            # A concurrent build of the same requirements may have won:
            # theirs is equal, ours goes.
            await jail.run(
                "keeping the environment",
                [
                    "/bin/sh",
                    "-c",
                    f'mv -T "{staging}" "{env_dir}" 2>/dev/null || rm -rf "{staging}"',
                ],
                env=jail.env(),
            )
        await jail.run(
            "copying the environment",
            ["/bin/sh", "-c", f'mkdir -p {OUT}/deps && cp -R "{env_dir}/." {OUT}/deps'],
            env=jail.env(),
        )

    async def run_pip(self, jail: BuildJail, folder: Path, target: str) -> None:
        """``pip install`` of the platform's requirements file (``folder``)
        into ``target`` (a path inside the jail): as the build's uid, seeing
        only the interpreter, the file, and the jail's own folders."""
        argv = [
            str(self.pip_python), "-m", "pip", "install",
            "--disable-pip-version-check", "--no-input", "--isolated",
            "--index-url", self.index_url,
            "--proxy", PROXY_URL,
            "--cache-dir", PIP_CACHE,
            "--target", target,
            "-r", f"{REQUIREMENTS_DIR}/requirements.txt",
        ]  # fmt: skip
        if not self.allow_sdists:
            # Wheels only: building an sdist runs the package's own code.
            argv[4:4] = ["--only-binary", ":all:"]
        result = await jail.run(
            "pip install",
            argv,
            env=jail.env(),
            cwd=WORK,
            ro_paths=self._pip_roots,
            ro_binds=[(folder, REQUIREMENTS_DIR)],
            check=False,
        )
        if result.returncode != 0:
            errors = [line for line in result.tail if line.startswith("ERROR:")]
            raise BuildFailed(
                "installing requirements.txt failed" + (f": {errors[-1]}" if errors else "")
            )


def _check_handler(handler: Path, log: Callable[[str], None]) -> None:
    """A syntax error in handler.py fails the build, not every activation."""
    try:
        compile(handler.read_bytes(), "handler.py", "exec")
    except SyntaxError as exc:
        log(f"handler.py:{exc.lineno}: {exc.msg}")
        raise BuildFailed(f"handler.py line {exc.lineno}: {exc.msg}") from None


def _write_requirements(folder: Path, accepted: list[str]) -> None:
    """The file pip reads, readable by the build's uid."""
    (folder / "requirements.txt").write_text(app_requirements.render(accepted))
    folder.chmod(0o755)


def _accepted_requirements(path: Path) -> list[str] | None:
    """The app's requirements as the platform will install them; None when
    it has no requirements.txt."""
    if not path.is_file():
        return None
    text = path.read_bytes().decode("utf-8", "replace")
    try:
        # Checked at SaveDraft already; checked again for what was stored
        # before that rule.
        return app_requirements.check(text) or None
    except InvalidArgument as exc:
        raise BuildFailed(exc.message) from None
