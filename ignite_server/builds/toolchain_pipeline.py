"""What the pipelines of the compiled runtimes (Go, Rust, Deno) share: one
toolchain command of the host, found when the server starts, and builds run
in a jail of their own (jail.py) whose steps see the toolchain read-only.

A pipeline whose toolchain is missing at start-up is not offered at all (the
registry skips it on FileNotFoundError); a toolchain removed since then fails
the builds that need it with BuildFailed.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from ignite_server.builds.jail import BuildJail, BuildSpace, Step
from ignite_server.builds.subprocess_build import DEFAULT_MEMORY_MB, installed_tool, require_tool
from ignite_server.ports.build_pipeline import BuildRequest

#: What a pipeline's ``prepare`` learnt about one build, for its later steps.
Plan = TypeVar("Plan")


class ToolchainPipeline(Generic[Plan]):
    """Base of a build pipeline that compiles with one toolchain command.

    ``space`` is where builds run; ``tool`` is the toolchain's command
    (default: ``default_tool()``; FileNotFoundError when it is not
    installed); ``memory_mb`` limits each build step.
    """

    #: PublishDraft builds the draft itself unless a subclass says otherwise.
    explicit_compile = False
    #: What the toolchain is called in errors ("the Go toolchain").
    toolchain: str

    def __init__(
        self,
        space: BuildSpace,
        tool: Path | None = None,
        *,
        memory_mb: int = DEFAULT_MEMORY_MB,
    ) -> None:
        self.space = space
        self.tool = installed_tool(self.locate_tool(tool), self.toolchain)
        self.memory_mb = memory_mb

    @staticmethod
    def default_tool() -> Path:
        """Where the toolchain's command is when none is given."""
        raise NotImplementedError

    def locate_tool(self, given: Path | None) -> Path:
        """``given`` or ``default_tool()``, symlinks resolved: the toolchain's
        own directories are found from where its command really lives."""
        return (given or self.default_tool()).resolve()

    async def build(self, request: BuildRequest) -> None:
        """Builds ``request.source_dir`` into ``request.out_dir`` within the
        request's time limit."""
        self.require_tool()
        async with self.prepared(request) as source:
            plan = await self.prepare(request, source)
            async with self.space.jail(
                request.organization,
                request.log,
                request.timeout_secs,
                source=source,
                operator_urls=self.egress_urls(),
            ) as jail:
                await self.compile(request, jail, plan)
                await jail.export(request.out_dir)
        await self.finish(request, plan)

    @contextlib.asynccontextmanager
    async def prepared(self, request: BuildRequest) -> AsyncIterator[Path]:
        """A folder of the server's beside ``out_dir`` for the pipeline to
        prepare the source in; the jail sees it at ``/build/src``."""
        with tempfile.TemporaryDirectory(dir=request.out_dir.parent) as folder:
            path = Path(folder)
            await asyncio.to_thread(path.chmod, 0o755)
            yield path

    async def prepare(self, request: BuildRequest, source: Path) -> Plan:
        """Writes what the jail builds into ``source``, from the server's
        own copy of the upload (no user code has run yet)."""
        raise NotImplementedError

    async def compile(self, request: BuildRequest, jail: BuildJail, plan: Plan) -> None:
        """The pipeline's own steps in the jail, leaving the artifact in
        ``/build/out``; BuildFailed when the code does not build."""
        raise NotImplementedError

    async def finish(self, request: BuildRequest, plan: Plan) -> None:
        """Completes the unpacked artifact (its launch manifest)."""
        raise NotImplementedError

    def egress_urls(self) -> list[str]:
        """Registries beyond the platform's allow-list this runtime's builds
        fetch from (configured by the operator)."""
        return []

    def require_tool(self) -> None:
        """At build time: the toolchain may have been removed since start-up."""
        require_tool(self.tool, self.toolchain)

    async def run(
        self,
        jail: BuildJail,
        step: str,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        cwd: str,
        ro_paths: Sequence[Path | str] = (),
        on_line: Callable[[str], bool] | None = None,
    ) -> None:
        """Runs one build step (``step`` names it in the failure reason) with
        the toolchain visible; BuildFailed when it fails."""
        await jail.run(
            step,
            argv,
            env=env,
            cwd=cwd,
            ro_paths=[*self.toolchain_paths(), *ro_paths],
            memory_mb=self.memory_mb,
            on_line=on_line,
        )

    async def run_steps(
        self, jail: BuildJail, steps: Sequence[Step], *, env: dict[str, str]
    ) -> None:
        """Runs build steps in one sandbox (BuildJail.run_steps) with the
        toolchain visible; BuildFailed naming the first that fails."""
        await jail.run_steps(
            steps, env=env, ro_paths=self.toolchain_paths(), memory_mb=self.memory_mb
        )

    def toolchain_paths(self) -> list[Path]:
        """What of the host a step needs to run the toolchain."""
        return [self.tool.parent.parent]
