"""What the pipelines of the compiled runtimes (Go, Rust, Deno) share: one
toolchain command of the host, found when the server starts, and build steps
run under one memory limit, in the build sandbox unless the pipeline was
made without it.

A pipeline whose toolchain is missing at start-up is not offered at all (the
registry skips it on FileNotFoundError); a toolchain removed since then fails
the builds that need it with BuildFailed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ignite_server.builds.subprocess_build import (
    DEFAULT_MEMORY_MB,
    Deadline,
    Sandbox,
    failure_reason,
    installed_tool,
    require_tool,
    run_step,
)
from ignite_server.ports.build_pipeline import BuildFailed, BuildRequest


class ToolchainPipeline:
    """Base of a build pipeline that compiles with one toolchain command.

    ``tool`` is that command (default: ``default_tool()``; FileNotFoundError
    when it is not installed); ``memory_mb`` limits each build step;
    ``sandbox`` runs the steps in the build sandbox (ignite_server/containment/).
    """

    #: PublishDraft builds the draft itself unless a subclass says otherwise.
    explicit_compile = False
    #: What the toolchain is called in errors ("the Go toolchain").
    toolchain: str

    def __init__(
        self,
        tool: Path | None = None,
        *,
        memory_mb: int = DEFAULT_MEMORY_MB,
        sandbox: bool = True,
    ) -> None:
        self.tool = installed_tool(self.locate_tool(tool), self.toolchain)
        self.memory_mb = memory_mb
        self.sandbox = sandbox

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
        await self.compile(request, Deadline(request.timeout_secs))

    async def compile(self, request: BuildRequest, deadline: Deadline) -> None:
        """The pipeline's own steps; BuildFailed when the code does not build."""
        raise NotImplementedError

    def require_tool(self) -> None:
        """At build time: the toolchain may have been removed since start-up."""
        require_tool(self.tool, self.toolchain)

    def step_sandbox(
        self, ro_paths: Sequence[Path | str], rw_paths: Sequence[Path | str]
    ) -> Sandbox | None:
        """The sandbox of a step that reads ``ro_paths`` and writes
        ``rw_paths``; None when this pipeline runs its steps without one."""
        return Sandbox(ro_paths=ro_paths, rw_paths=rw_paths) if self.sandbox else None

    async def run(
        self,
        step: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        request: BuildRequest,
        deadline: Deadline,
        sandbox: Sandbox | None,
        on_line: Callable[[str], bool] | None = None,
    ) -> None:
        """Runs one build step (``step`` names it in the failure reason) with
        its output in the build log; BuildFailed when it fails."""
        result = await run_step(
            argv,
            cwd=cwd,
            env=env,
            log=request.log,
            deadline=deadline,
            memory_mb=self.memory_mb,
            sandbox=sandbox,
            on_line=on_line,
        )
        if result.returncode != 0:
            raise BuildFailed(failure_reason(step, result, self.memory_mb))
