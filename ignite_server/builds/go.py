"""The Go build pipeline (seed 002): source → one static binary + manifest.

The user's archive holds ``package main`` with ``main.go`` and ``go.mod`` at
its root and imports the SDK as ``ignite``. A build:

1. the server puts the project and the bundled SDK (runtimes/go/ignite,
   standard library only) side by side into the folder the jail sees at
   ``/build/src``; the jail copies them into ``/build/work``;
2. ``go mod init`` when there is no go.mod, then the ``ignite`` module is
   pointed at the bundled copy with a ``replace`` directive (whatever the
   project said about ``ignite`` before);
3. ``go mod tidy`` resolves the project's own dependencies through the Go
   module proxy (the egress proxy lets the jail reach it) into the
   organization's module cache;
4. ``go build`` with ``CGO_ENABLED=0 -trimpath -ldflags="-s -w"`` for
   linux/amd64 writes ``app`` into ``/build/out``, and the manifest runs it, from
   the ``exec`` pool where the backend has one.

The organization's cache keeps Go's build cache and module cache
(``/build/cache/go``), which are safe for concurrent builds and make a rebuild
compile only the user's package.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from ignite_server.builds.jail import CACHE, OUT, SRC, WORK, BuildJail, Step
from ignite_server.builds.launch_manifest import (
    CODE_PLACEHOLDER,
    EXEC_POOL,
    copy_sources,
    write_launch_manifest,
)
from ignite_server.builds.toolchain_pipeline import ToolchainPipeline
from ignite_server.domain.models import RuntimeKind
from ignite_server.ports.build_pipeline import BuildFailed, BuildRequest

#: The bundled SDK module, imported by apps as ``ignite``.
SDK_DIR = Path(__file__).resolve().parents[2] / "runtimes" / "go" / "ignite"
SDK_MODULE = "ignite"
#: The binary's name inside the artifact.
BINARY = "app"
#: Where the go command fetches modules when the server's environment does
#: not say otherwise (no ``direct``: a build reaches module proxies, never
#: arbitrary version-control hosts).
DEFAULT_GOPROXY = "https://proxy.golang.org"
GO_CACHE = f"{CACHE}/go"


def default_go() -> Path:
    """The go command on PATH, else the standard install location."""
    found = shutil.which("go")
    return Path(found) if found else Path("/usr/local/go/bin/go")


class GoPipeline(ToolchainPipeline[None]):
    """Builds Go apps into static linux/amd64 binaries.

    ``tool`` is the toolchain's go command (default: on PATH, else
    /usr/local/go/bin/go); ``memory_mb`` and ``sandbox`` as in
    ToolchainPipeline.
    """

    kind = RuntimeKind.GO
    toolchain = "the Go toolchain"
    default_tool = staticmethod(default_go)

    async def prepare(self, request: BuildRequest, source: Path) -> None:
        await asyncio.to_thread(_prepare, request.source_dir, source / "app", source / "ignite-sdk")
        if not any((source / "app").glob("*.go")):
            raise BuildFailed("the archive has no .go files at its root (main.go is required)")

    async def compile(self, request: BuildRequest, jail: BuildJail, plan: None) -> None:
        """Compiles the project to ``/build/out/app``."""
        project = f"{WORK}/app"
        env = jail.env(
            PATH=f"{self.tool.parent}:/usr/bin:/bin",
            GOCACHE=f"{GO_CACHE}/build",
            GOMODCACHE=f"{GO_CACHE}/mod",
            GOPATH=f"{GO_CACHE}/path",
            GOPROXY=os.environ.get("GOPROXY", DEFAULT_GOPROXY),
            GOFLAGS="-mod=mod",
            # Never download another toolchain because go.mod asks for one.
            GOTOOLCHAIN="local",
            CGO_ENABLED="0",
            GOOS="linux",
            GOARCH="amd64",
        )
        for name in ("GOSUMDB", "GOPRIVATE", "GONOSUMDB", "GONOPROXY"):
            if name in os.environ:
                env[name] = os.environ[name]
        go = str(self.tool)
        steps = [Step("copying the project", ["/bin/cp", "-R", f"{SRC}/.", f"{WORK}/"], WORK)]
        commands: list[tuple[str, list[str]]] = []
        if not (request.source_dir / "go.mod").exists():
            commands.append(("go mod init", [go, "mod", "init", "app"]))
        commands += [
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
                [go, "build", "-trimpath", "-ldflags=-s -w", "-o", f"{OUT}/{BINARY}", "."],
            ),
        ]  # fmt: skip
        steps += [
            Step(name, argv, project, shown="$ go " + " ".join(argv[1:])) for name, argv in commands
        ]
        await self.run_steps(jail, steps, env=env)

    async def finish(self, request: BuildRequest, plan: None) -> None:
        write_launch_manifest(request.out_dir, [f"{CODE_PLACEHOLDER}/{BINARY}"], prestart=EXEC_POOL)

    def egress_urls(self) -> list[str]:
        """The module proxies the server's GOPROXY names (the default one is
        an allowed registry already)."""
        value = os.environ.get("GOPROXY", DEFAULT_GOPROXY)
        return [part for part in value.replace("|", ",").split(",") if urlsplit(part).hostname]


def _prepare(source: Path, project: Path, sdk: Path) -> None:
    copy_sources(source, project)
    shutil.copytree(SDK_DIR, sdk)
