"""The Deno build pipeline: a TypeScript/JavaScript project → a directory
Deno runs offline.

The user's archive holds an entry module (``main.ts`` by default) that calls
``start(handle)`` from ``"ignite"``, and optionally a ``deno.json`` (or
``deno.jsonc``). A build:

1. the server copies the project into the folder the jail sees at ``/build/src``,
   and the bundled SDK (runtimes/deno/ignite) into ``.ignite/sdk`` inside
   it, and rewrites the import map so ``"ignite"`` resolves to that copy, and
   the configuration so npm packages and remote modules land inside the
   artifact (deno_config.py);
2. in the jail (jail.py) the project is copied to ``/build/out``, and ``deno
   install --entrypoint <entry>`` resolves and downloads every dependency
   (the download cache, DENO_DIR, is the organization's ``/build/cache/deno``, so
   a rebuild fetches nothing it has seen before);
3. ``deno check`` type-checks the entry module: a type or syntax error fails
   the build with Deno's message (build arg ``check=false`` skips it).

Pods run ``deno run --cached-only``: everything they import is inside the
artifact, so they need no network and no shared cache. The ``deno`` binary
is mounted read-only from the host. Their main module is the SDK's
bootstrap (runtimes/deno/ignite/bootstrap.ts) with the entry module as its
argument, so the local backend can pre-start them (pool ``deno``): a
pre-started Deno reads the configuration when it starts, so the manifest
lists the configuration files (``prestart_files``) and pods are pooled by
them; the entry module is imported when the pod is given its app.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ignite_server.builds.deno_config import SDK_IN_ARTIFACT, prepare_project
from ignite_server.builds.jail import CACHE, OUT, SRC, BuildJail, Step
from ignite_server.builds.launch_manifest import CODE_PLACEHOLDER, write_launch_manifest
from ignite_server.builds.toolchain_pipeline import ToolchainPipeline
from ignite_server.domain.models import RuntimeKind
from ignite_server.ports.build_pipeline import BuildRequest

#: The pod's Deno cache (compiled-module cache only; dependencies are in the
#: artifact). Under the sandbox's private /tmp, so pods share nothing.
POD_DENO_DIR = "/tmp/deno-dir"
#: The pre-started pool of Deno pods (docs/pod-protocol.md).
PRESTART_POOL = "deno"
#: The main module of every pod, inside the artifact's copy of the SDK.
BOOTSTRAP = f"{SDK_IN_ARTIFACT}/bootstrap.ts"
#: Files beside deno.json that Deno reads when it starts with that config.
STARTUP_FILES = ("deno.lock", "package.json")


def default_deno() -> Path:
    """deno on PATH, else the one installed beside the server's interpreter
    (the ``deno`` package from PyPI)."""
    found = shutil.which("deno")
    if found:
        return Path(found)
    return Path(sys.executable).parent / "deno"


class DenoPipeline(ToolchainPipeline[str]):
    """Builds Deno apps.

    ``tool`` is the Deno binary builds and pods use (default: on PATH, else
    beside the server's Python); ``memory_mb`` and ``sandbox`` as in
    ToolchainPipeline.
    """

    kind = RuntimeKind.DENO
    toolchain = "Deno"
    default_tool = staticmethod(default_deno)

    async def prepare(self, request: BuildRequest, source: Path) -> str:
        """The project in ``source``; returns its entry module."""
        return await asyncio.to_thread(
            prepare_project, request.source_dir, source, request.build_args
        )

    async def compile(self, request: BuildRequest, jail: BuildJail, entry: str) -> None:
        """Prepares ``/build/out`` so ``deno run --cached-only`` can run it."""
        env = jail.env(
            PATH=f"{self.tool.parent}:/usr/bin:/bin",
            DENO_DIR=f"{CACHE}/deno",
            DENO_NO_UPDATE_CHECK="1",
            NO_COLOR="1",
            # Trust the host's CA certificates too (a registry mirror or a
            # TLS-inspecting proxy), not only Deno's bundled roots.
            DENO_TLS_CA_STORE="mozilla,system",
        )
        for name in ("NPM_CONFIG_REGISTRY", "DENO_AUTH_TOKENS"):
            if name in os.environ:
                env[name] = os.environ[name]
        deno = str(self.tool)
        steps = [Step("copying the project", ["/bin/cp", "-R", f"{SRC}/.", f"{OUT}/"], OUT)]
        commands = [("deno install", [deno, "install", "--entrypoint", entry])]
        if request.build_args.get("check", "true").lower() != "false":
            commands.append(("deno check", [deno, "check", entry]))
        steps += [
            Step(name, argv, OUT, shown=f"$ deno {' '.join(argv[1:])}") for name, argv in commands
        ]
        await self.run_steps(jail, steps, env=env)

    async def finish(self, request: BuildRequest, entry: str) -> None:
        out = request.out_dir
        deno = str(self.tool)
        argv = [
            deno, "run",
            "--cached-only", "--no-prompt", "--allow-all",
            "--config", f"{CODE_PLACEHOLDER}/deno.json",
            f"{CODE_PLACEHOLDER}/{BOOTSTRAP}",
            f"{CODE_PLACEHOLDER}/{entry}",
        ]  # fmt: skip
        write_launch_manifest(
            out,
            argv,
            ro_paths=[str(self.tool.parent)],
            env={"DENO_DIR": POD_DENO_DIR, "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"},
            prestart=PRESTART_POOL,
            prestart_files=await asyncio.to_thread(_startup_files, out),
        )

    def toolchain_paths(self) -> list[Path]:
        return [self.tool.parent]

    def egress_urls(self) -> list[str]:
        """The npm registry the server's NPM_CONFIG_REGISTRY names, if any."""
        registry = os.environ.get("NPM_CONFIG_REGISTRY", "")
        return [registry] if urlsplit(registry).hostname else []


def _startup_files(out: Path) -> list[str]:
    """What a Deno started on ``out``'s configuration reads before it
    imports the entry module: the configuration, the files Deno finds
    beside it, the import map it names, and the SDK the bootstrap loads."""
    names = ["deno.json", *(name for name in STARTUP_FILES if (out / name).is_file())]
    import_map = json.loads((out / "deno.json").read_text()).get("importMap")
    if isinstance(import_map, str):
        names.append(Path(os.path.normpath(import_map)).as_posix())
    sdk = out / SDK_IN_ARTIFACT
    names += sorted(f"{SDK_IN_ARTIFACT}/{module.name}" for module in sdk.glob("*.ts"))
    return names
