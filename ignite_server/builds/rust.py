"""The Rust build pipeline (seed 003): a Cargo package → one native binary,
or with ``--rust-target wasm`` one WebAssembly component.

The user's archive is a Cargo package (``Cargo.toml`` at the root) whose
handler carries ``#[ignite::main]``. A build:

1. picks the target the runtime asks for: ``x86_64-unknown-linux-gnu``
   (rust_native.py) or ``wasm32-wasip2`` (rust_wasm.py, which first checks
   that this host can build and run wasm apps);
2. copies the package into the build directory and makes it buildable on its
   own (cargo_manifest.py: the bundled SDK as the ``ignite`` dependency,
   default dependencies, a binary for a library-only package);
3. runs ``cargo build --release`` for the target and copies the package's
   binary into the artifact directory;
4. lets the target finish the artifact: its launch manifest, and for wasm the
   component precompiled for the Wasmtime host.

Caching: the Cargo home (registry index and downloaded crates) and one Cargo
target directory live under ``cache_dir`` and are shared by every Rust build,
so a rebuild whose dependencies did not change compiles only the user's
crate. Builds take turns (a lock file): the target directory is shared, and
compiling two crates graphs at once on a small machine is slower than one
after the other. The build directory has a fixed path for the same reason
(Cargo's package ids include it). When the archive has no Cargo.lock, the
lock file Cargo resolved for the same manifest last time is reused, so a
rebuild does not query the registry again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ignite_server.builds.cargo_manifest import GENERATED_BIN, SDK_ROOT, prepare_package
from ignite_server.builds.python import default_interpreter
from ignite_server.builds.rust_native import NativeTarget
from ignite_server.builds.rust_wasm import WasmTarget
from ignite_server.builds.subprocess_build import DEFAULT_MEMORY_MB, Deadline, network_env
from ignite_server.builds.toolchain_pipeline import ToolchainPipeline
from ignite_server.domain.models import RuntimeKind, RuntimeTarget
from ignite_server.ports.build_pipeline import BuildFailed, BuildRequest

#: How often a build waiting for another one checks the lock.
LOCK_POLL_SECS = 0.2


def default_cargo() -> Path:
    """Cargo of the default toolchain, bypassing rustup's proxy (the build
    sets its own CARGO_HOME, which the proxy would take as rustup's home)."""
    rustup_home = Path(os.environ.get("RUSTUP_HOME", Path.home() / ".rustup"))
    toolchains = sorted((rustup_home / "toolchains").glob("stable-*"))
    for toolchain in toolchains:
        if (toolchain / "bin" / "cargo").exists():
            return toolchain / "bin" / "cargo"
    found = shutil.which("cargo")
    return Path(found) if found else Path("/usr/bin/cargo")


class RustTarget(Protocol):
    """What differs between the targets a Rust app is built for."""

    #: Cargo's ``--target``.
    triple: str
    #: The file the built binary becomes in the artifact directory.
    artifact: str
    #: Whether it is wasm32-wasip2 (the manifest rewrite leaves tokio out).
    wasm: bool

    async def finish(self, request: BuildRequest, deadline: Deadline) -> None:
        """Completes the artifact once the binary is in it."""
        ...


@dataclass
class _Artifacts:
    """Binaries Cargo reported for the user's package."""

    manifest_path: str
    binaries: dict[str, str] = field(default_factory=dict)

    def consume(self, line: str) -> bool:
        """Takes Cargo's JSON messages off the log; True when it did."""
        if not line.startswith('{"reason":'):
            return False
        try:
            message = json.loads(line)
        except ValueError:
            return False
        if (
            message.get("reason") == "compiler-artifact"
            and message.get("executable")
            and message.get("manifest_path") == self.manifest_path
        ):
            self.binaries[message["target"]["name"]] = message["executable"]
        return True


class RustPipeline(ToolchainPipeline):
    """Builds Rust apps into native linux binaries or wasm32-wasip2 components.

    ``tool`` is the toolchain's cargo (default: the stable rustup toolchain,
    else cargo on PATH); ``jobs`` caps Cargo's parallel compiler processes;
    ``memory_mb`` and ``sandbox`` as in ToolchainPipeline; ``wasmtime`` is the
    Python package that embeds Wasmtime for wasm apps; ``sysroot`` is the
    toolchain directory searched for the wasm32-wasip2 standard library
    (default: the one ``tool`` belongs to); ``interpreter`` runs the Wasmtime
    host (default: the one Python pods run).
    """

    kind = RuntimeKind.RUST
    explicit_compile = True
    toolchain = "the Rust toolchain"
    default_tool = staticmethod(default_cargo)

    def __init__(
        self,
        tool: Path | None = None,
        *,
        wasmtime: str = "wasmtime",
        sysroot: Path | None = None,
        interpreter: Path | None = None,
        jobs: int = 2,
        memory_mb: int = DEFAULT_MEMORY_MB,
        sandbox: bool = True,
    ) -> None:
        super().__init__(tool, memory_mb=memory_mb, sandbox=sandbox)
        self.jobs = jobs
        self.wasmtime = wasmtime
        self.sysroot = sysroot
        self.interpreter = interpreter or default_interpreter()

    def locate_tool(self, given: Path | None) -> Path:
        # Not resolved: cargo on PATH may be rustup's proxy, a link to rustup
        # that acts on the name it was started by.
        return given or self.default_tool()

    async def build(self, request: BuildRequest) -> None:
        """Compiles the package in ``request.source_dir`` to ``out_dir/app``
        (or ``out_dir/app.wasm`` for the wasm target). The target is checked
        first: a host that cannot build for it refuses before anything runs."""
        target = self._target(request.runtime.target)
        self.require_tool()
        deadline = Deadline(request.timeout_secs)
        request.cache_dir.mkdir(parents=True, exist_ok=True)
        async with _exclusive(request.cache_dir / "rust-build.lock", deadline, request):
            await self._build(request, deadline, target)

    def _target(self, wanted: RuntimeTarget) -> RustTarget:
        if wanted != RuntimeTarget.WASM:
            return NativeTarget()
        return WasmTarget.on_this_host(
            self,
            sysroot=self.sysroot or self._sysroot(),
            wasmtime=self.wasmtime,
            interpreter=self.interpreter,
        )

    def _sysroot(self) -> Path:
        # The toolchain directory: <sysroot>/bin/cargo.
        return self.tool.resolve().parent.parent

    async def _build(self, request: BuildRequest, deadline: Deadline, target: RustTarget) -> None:
        work = request.cache_dir / "work"
        package = work / "package"
        cargo_home = request.cache_dir / "cargo-home"
        target_dir = request.cache_dir / "target"
        locks = request.cache_dir / "lockfiles"
        for path in (cargo_home, target_dir, locks):
            path.mkdir(parents=True, exist_ok=True)
        prepared = await asyncio.to_thread(
            prepare_package, request.source_dir, package, locks, target.wasm
        )
        for note in prepared.notes:
            request.log(note)

        artifacts = _Artifacts(manifest_path=str(package / "Cargo.toml"))
        argv = [
            str(self.tool), "build", "--release",
            "--target", target.triple,
            "--jobs", str(self.jobs),
            "--message-format", "json-render-diagnostics",
        ]  # fmt: skip
        env = {
            "PATH": f"{self.tool.parent}:/usr/bin:/bin",
            "HOME": str(work),
            "CARGO_HOME": str(cargo_home),
            "CARGO_TARGET_DIR": str(target_dir),
            "CARGO_TERM_COLOR": "never",
            "CARGO_TERM_PROGRESS_WHEN": "never",
            **network_env(),
        }
        request.log("$ cargo " + " ".join(argv[1:]))
        await self.run(
            "cargo build",
            argv,
            cwd=package,
            env=env,
            request=request,
            deadline=deadline,
            sandbox=self.step_sandbox([self._sysroot(), SDK_ROOT], [work, cargo_home, target_dir]),
            on_line=artifacts.consume,
        )
        binary = _pick_binary(artifacts.binaries, prepared.name)
        await asyncio.to_thread(
            _finish,
            package,
            binary,
            request.out_dir / target.artifact,
            locks / prepared.lock_key,
        )
        await target.finish(request, deadline)


@contextlib.asynccontextmanager
async def _exclusive(path: Path, deadline: Deadline, request: BuildRequest) -> AsyncIterator[None]:
    """Holds an flock on ``path``; polls rather than blocks, so waiting
    respects the deadline and can be cancelled."""
    with path.open("a") as handle:
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:
                    request.log("waiting for another Rust build to finish")
                    announced = True
                deadline.remaining()
                await asyncio.sleep(LOCK_POLL_SECS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pick_binary(binaries: dict[str, str], package_name: str) -> str:
    if GENERATED_BIN in binaries:
        return binaries[GENERATED_BIN]
    if len(binaries) == 1:
        return next(iter(binaries.values()))
    if package_name in binaries:
        return binaries[package_name]
    if not binaries:
        raise BuildFailed("the package built no binary")
    raise BuildFailed(
        f"the package builds several binaries ({', '.join(sorted(binaries))}) and none is "
        f"named after the package ({package_name})"
    )


def _finish(package: Path, binary: str, artifact: Path, cached_lock: Path) -> None:
    shutil.copy2(binary, artifact)
    if (package / "Cargo.lock").exists():
        shutil.copy(package / "Cargo.lock", cached_lock)
