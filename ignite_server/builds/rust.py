"""The Rust build pipeline (seed 003): a Cargo package → one native binary,
or with ``--rust-target wasm`` one WebAssembly component.

The user's archive is a Cargo package (``Cargo.toml`` at the root) whose
handler carries ``#[ignite::main]``. A build:

1. picks the target the runtime asks for: ``x86_64-unknown-linux-gnu``
   (rust_native.py) or ``wasm32-wasip2`` (rust_wasm.py, which first checks
   that this host can build and run wasm apps);
2. the server copies the package into the folder the jail sees at ``/build/src``
   and makes it buildable on its own (cargo_manifest.py: the bundled SDK as
   the ``ignite`` dependency, default dependencies, a binary for a
   library-only package);
3. in the jail (jail.py): the package is copied to ``/build/work/package``,
   ``cargo build --release`` runs for the target, and the package's binary,
   which Cargo names in its JSON messages, is copied into ``/build/out``;
4. the target finishes the artifact: for wasm the component precompiled for
   the Wasmtime host (in the jail), and its launch manifest (by the server).

Caching: the Cargo home (registry index and downloaded crates), one Cargo
target directory and the lock files of earlier builds live in the
organization's cache (``/build/cache/rust``), so a rebuild whose dependencies did
not change compiles only the user's crate. The package's path in the jail
is the same for every build (Cargo's package ids include it). Builds of one
organization share its target directory and take turns on Cargo's own lock;
builds of different organizations share nothing and run at the same time.
When the archive has no Cargo.lock, the one Cargo resolved for the same
manifest last time is reused, so a rebuild does not query the registry again.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ignite_server.builds.cargo_manifest import (
    GENERATED_BIN,
    SDK_IN_JAIL,
    SDK_ROOT,
    PreparedPackage,
    prepare_package,
)
from ignite_server.builds.jail import CACHE, OUT, SRC, WORK, BuildJail, BuildSpace
from ignite_server.builds.python import default_interpreter
from ignite_server.builds.rust_native import NativeTarget
from ignite_server.builds.rust_wasm import WasmTarget
from ignite_server.builds.subprocess_build import DEFAULT_MEMORY_MB
from ignite_server.builds.toolchain_pipeline import ToolchainPipeline
from ignite_server.domain.models import RuntimeKind, RuntimeTarget
from ignite_server.ports.build_pipeline import BuildFailed, BuildRequest

RUST_CACHE = f"{CACHE}/rust"
PACKAGE = f"{WORK}/package"


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

    async def finish_in(self, jail: BuildJail) -> None:
        """Completes ``/build/out`` in the jail once the binary is in it."""
        ...

    def write_manifest(self, out_dir: Path) -> None:
        """Writes the unpacked artifact's launch manifest."""
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


class RustPipeline(ToolchainPipeline[None]):
    """Builds Rust apps into native linux binaries or wasm32-wasip2 components.

    ``tool`` is the toolchain's cargo (default: the stable rustup toolchain,
    else cargo on PATH); ``jobs`` caps Cargo's parallel compiler processes;
    ``space`` and ``memory_mb`` as in ToolchainPipeline; ``wasmtime`` is the
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
        space: BuildSpace,
        tool: Path | None = None,
        *,
        wasmtime: str = "wasmtime",
        sysroot: Path | None = None,
        interpreter: Path | None = None,
        jobs: int = 2,
        memory_mb: int = DEFAULT_MEMORY_MB,
    ) -> None:
        super().__init__(space, tool, memory_mb=memory_mb)
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
        async with self.prepared(request) as source:
            prepared = await asyncio.to_thread(
                prepare_package, request.source_dir, source / "package", target.wasm
            )
            for note in prepared.notes:
                request.log(note)
            async with self.space.jail(
                request.organization, request.log, request.timeout_secs, source=source
            ) as jail:
                await self._compile(jail, target, prepared)
                await target.finish_in(jail)
                await jail.export(request.out_dir)
        await asyncio.to_thread(target.write_manifest, request.out_dir)

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

    async def _compile(
        self, jail: BuildJail, target: RustTarget, prepared: PreparedPackage
    ) -> None:
        lock = f"{RUST_CACHE}/lockfiles/{prepared.lock_key}"
        await jail.run(
            "copying the package",
            [
                "/bin/sh", "-c",
                f"mkdir -p {RUST_CACHE}/cargo-home {RUST_CACHE}/target {RUST_CACHE}/lockfiles"
                f" && cp -R {SRC}/package {PACKAGE}"
                f" && if [ ! -e {PACKAGE}/Cargo.lock ] && [ -f {lock} ];"
                f" then cp {lock} {PACKAGE}/Cargo.lock; fi",
            ],
            env=jail.env(),
        )  # fmt: skip
        artifacts = _Artifacts(manifest_path=f"{PACKAGE}/Cargo.toml")
        argv = [
            str(self.tool), "build", "--release",
            "--target", target.triple,
            "--jobs", str(self.jobs),
            "--message-format", "json-render-diagnostics",
        ]  # fmt: skip
        env = jail.env(
            PATH=f"{self.tool.parent}:/usr/bin:/bin",
            CARGO_HOME=f"{RUST_CACHE}/cargo-home",
            CARGO_TARGET_DIR=f"{RUST_CACHE}/target",
            CARGO_TERM_COLOR="never",
            CARGO_TERM_PROGRESS_WHEN="never",
        )
        jail.log("$ cargo " + " ".join(argv[1:]))
        await jail.run(
            "cargo build",
            argv,
            env=env,
            cwd=PACKAGE,
            ro_paths=[self._sysroot()],
            ro_binds=[(SDK_ROOT, SDK_IN_JAIL)],
            memory_mb=self.memory_mb,
            on_line=artifacts.consume,
        )
        binary = _pick_binary(artifacts.binaries, prepared.name)
        if not binary.startswith(f"{RUST_CACHE}/target/"):
            raise BuildFailed(f"Cargo reported its binary outside its target directory: {binary}")
        await jail.run(
            "collecting the binary",
            [
                "/bin/sh", "-c",
                f"cp -- {shlex.quote(binary)} {OUT}/{target.artifact}"
                f" && if [ -f {PACKAGE}/Cargo.lock ]; then cp {PACKAGE}/Cargo.lock {lock}; fi",
            ],
            env=jail.env(),
        )  # fmt: skip


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
