"""The Go build pipeline (seed 002): source → one static binary + manifest.

The user's archive holds ``package main`` with ``main.go`` and ``go.mod`` at
its root and imports the SDK as ``ignite``. A build:

1. copies the project and the bundled SDK (runtimes/go/ignite, standard
   library only) side by side into a scratch directory under ``cache_dir``;
2. runs ``go mod init`` when there is no go.mod, then points the ``ignite``
   module at the bundled copy with a ``replace`` directive (whatever the
   project said about ``ignite`` before);
3. ``go mod tidy`` resolves the project's own dependencies through the Go
   module proxy into the shared module cache;
4. ``go build`` with ``CGO_ENABLED=0 -trimpath -ldflags="-s -w"`` for
   linux/amd64 writes ``app`` into the artifact directory, and the manifest
   runs it, from the ``exec`` pool where the backend has one.

``cache_dir`` keeps Go's build cache and module cache, which are safe for
concurrent builds and make a rebuild compile only the user's package.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

from ignite_server.builds.launch_manifest import (
    CODE_PLACEHOLDER,
    EXEC_POOL,
    copy_sources,
    write_launch_manifest,
)
from ignite_server.builds.subprocess_build import Deadline, network_env
from ignite_server.builds.toolchain_pipeline import ToolchainPipeline
from ignite_server.domain.models import RuntimeKind
from ignite_server.ports.build_pipeline import BuildFailed, BuildRequest

#: The bundled SDK module, imported by apps as ``ignite``.
SDK_DIR = Path(__file__).resolve().parents[2] / "runtimes" / "go" / "ignite"
SDK_MODULE = "ignite"
#: The binary's name inside the artifact.
BINARY = "app"
#: Where the go command fetches modules when the server's environment does
#: not say otherwise.
DEFAULT_GOPROXY = "https://proxy.golang.org,direct"


def default_go() -> Path:
    """The go command on PATH, else the standard install location."""
    found = shutil.which("go")
    return Path(found) if found else Path("/usr/local/go/bin/go")


class GoPipeline(ToolchainPipeline):
    """Builds Go apps into static linux/amd64 binaries.

    ``tool`` is the toolchain's go command (default: on PATH, else
    /usr/local/go/bin/go); ``memory_mb`` and ``sandbox`` as in
    ToolchainPipeline.
    """

    kind = RuntimeKind.GO
    toolchain = "the Go toolchain"
    default_tool = staticmethod(default_go)

    async def compile(self, request: BuildRequest, deadline: Deadline) -> None:
        """Compiles ``request.source_dir`` to ``request.out_dir/app``."""
        scratch = request.cache_dir / "work" / uuid.uuid4().hex
        try:
            await self._build(request, scratch, deadline)
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    async def _build(self, request: BuildRequest, scratch: Path, deadline: Deadline) -> None:
        project = scratch / "app"
        await asyncio.to_thread(_prepare, request.source_dir, project, scratch / "ignite-sdk")
        if not any(project.glob("*.go")):
            raise BuildFailed("the archive has no .go files at its root (main.go is required)")
        go_root = self.tool.parent.parent
        caches = [request.cache_dir / name for name in ("go-build", "go-mod", "go-path")]
        for path in caches:
            path.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": f"{self.tool.parent}:/usr/bin:/bin",
            "HOME": str(scratch),
            "GOCACHE": str(caches[0]),
            "GOMODCACHE": str(caches[1]),
            "GOPATH": str(caches[2]),
            "GOPROXY": os.environ.get("GOPROXY", DEFAULT_GOPROXY),
            "GOFLAGS": "-mod=mod",
            # Never download another toolchain because go.mod asks for one.
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
            "GOOS": "linux",
            "GOARCH": "amd64",
            **network_env(),
        }
        for name in ("GOSUMDB", "GOPRIVATE", "GONOSUMDB", "GONOPROXY"):
            if name in os.environ:
                env[name] = os.environ[name]
        sandbox = self.step_sandbox([go_root], [scratch, *caches, request.out_dir])
        go = str(self.tool)
        steps: list[tuple[str, list[str]]] = []
        if not (project / "go.mod").exists():
            steps.append(("go mod init", [go, "mod", "init", "app"]))
        steps += [
            (
                "go mod edit",
                [
                    go, "mod", "edit",
                    f"-dropreplace={SDK_MODULE}",
                    f"-replace={SDK_MODULE}=../ignite-sdk",
                    f"-require={SDK_MODULE}@v0.0.0",
                ],
            ),
            ("go mod tidy", [go, "mod", "tidy"]),
            (
                "go build",
                [
                    go, "build", "-trimpath", "-ldflags=-s -w",
                    "-o", str(request.out_dir / BINARY), ".",
                ],
            ),
        ]  # fmt: skip
        for name, argv in steps:
            request.log(f"$ {' '.join(argv[1:]).replace(go, 'go')}")
            await self.run(
                name,
                argv,
                cwd=project,
                env=env,
                request=request,
                deadline=deadline,
                sandbox=sandbox,
            )
        write_launch_manifest(request.out_dir, [f"{CODE_PLACEHOLDER}/{BINARY}"], prestart=EXEC_POOL)


def _prepare(source: Path, project: Path, sdk: Path) -> None:
    copy_sources(source, project)
    shutil.copytree(SDK_DIR, sdk)
