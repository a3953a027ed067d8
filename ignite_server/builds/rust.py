"""The Rust build pipeline (seed 003): a Cargo package → one native binary.

The user's archive is a Cargo package (``Cargo.toml`` at the root) whose
handler carries ``#[ignite::main]``. A build:

1. copies the package into the build directory and rewrites its Cargo.toml:
   ``ignite`` (``"*"``, ``{ workspace = true }``, absent, anything) becomes a
   path dependency on the bundled SDK (runtimes/rust/ignite); ``serde`` (with
   ``derive``), ``serde_json`` and ``tokio`` are added when absent, and any
   other ``{ workspace = true }`` is resolved, since the archive is built on
   its own (an empty ``[workspace]`` makes it its own root);
2. gives a package with only ``src/lib.rs`` a binary: ``#[ignite::main]``
   emits a public ``__ignite_entry()`` next to the handler, and the pipeline
   adds a ``[[bin]]`` target named ``ignite-app`` whose ``main`` calls
   ``<crate>::__ignite_entry()``;
3. runs ``cargo build --release`` for ``x86_64-unknown-linux-gnu`` and copies
   the package's binary to ``app`` in the artifact directory.

``--rust-target wasm`` builds for ``wasm32-wasip2`` instead: the SDK then
compiles to a WASI command that answers one invocation envelope, tokio is
not injected (it does not build for WASI with the usual features), and the
artifact is ``app.wasm`` plus a launch manifest that starts the Wasmtime host
(runtimes/wasm/ignite_wasm_host.py, on the Python interpreter the Python
runtime uses, with the ``wasmtime`` package mounted read-only). Where the
toolchain lacks the wasm32-wasip2 target or the server lacks the ``wasmtime``
package, the build fails with FAILED_PRECONDITION / WASM_TARGET_UNAVAILABLE.

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
import hashlib
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ignite_server.builds.launch_manifest import (
    CODE_PLACEHOLDER,
    copy_sources,
    write_launch_manifest,
)
from ignite_server.builds.python import default_interpreter
from ignite_server.builds.subprocess_build import (
    DEFAULT_MEMORY_MB,
    Deadline,
    Sandbox,
    failure_reason,
    installed_tool,
    network_env,
    require_tool,
    run_step,
)
from ignite_server.domain.errors import FailedPrecondition
from ignite_server.domain.models import RuntimeKind, RuntimeTarget
from ignite_server.ports.build_pipeline import BuildFailed, BuildRequest

#: The bundled SDK crates (``ignite`` and its proc-macro crate).
SDK_ROOT = Path(__file__).resolve().parents[2] / "runtimes" / "rust"
SDK_CRATE = SDK_ROOT / "ignite"
NATIVE_TARGET = "x86_64-unknown-linux-gnu"
WASM_TARGET = "wasm32-wasip2"
#: The binary's name inside the artifact.
BINARY = "app"
#: The wasm component's name inside the artifact.
WASM_BINARY = "app.wasm"
#: The Wasmtime host that serves wasm apps over the pod protocol.
WASM_HOST = Path(__file__).resolve().parents[2] / "runtimes" / "wasm" / "ignite_wasm_host.py"
#: The binary target added to library-only packages.
GENERATED_BIN = "ignite-app"
GENERATED_BIN_PATH = ".ignite/main.rs"
#: Added when the package does not declare them (seed 003).
INJECTED_DEPENDENCIES: dict[str, Any] = {
    "serde": {"version": "1", "features": ["derive"]},
    "serde_json": "1",
    "tokio": {"version": "1", "features": ["full"]},
}
#: Not injected into wasm builds: tokio's "full" features refuse to compile
#: for WASI, and a wasm app has no async runtime to run it on.
NATIVE_ONLY_DEPENDENCIES = frozenset({"tokio"})
#: The manifest of an upload that is only src/lib.rs or src/main.rs.
DEFAULT_CARGO_TOML = """[package]
name = "app"
version = "0.1.0"
edition = "2021"

[dependencies]
ignite = "*"
"""
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


class RustPipeline:
    """Builds Rust apps into native linux binaries or wasm32-wasip2 components.

    ``cargo`` is the toolchain's cargo (default: the stable rustup toolchain,
    else cargo on PATH; FileNotFoundError when there is none); ``jobs`` caps
    Cargo's parallel compiler processes; ``memory_mb`` limits the build;
    ``sandbox`` runs it under bubblewrap when installed; ``wasmtime`` is the
    Python package that embeds Wasmtime for wasm apps; ``sysroot`` is the
    toolchain directory searched for the wasm32-wasip2 standard library
    (default: the one ``cargo`` belongs to); ``interpreter`` runs the Wasmtime
    host (default: the one Python pods run).
    """

    kind = RuntimeKind.RUST
    explicit_compile = True

    def __init__(
        self,
        cargo: Path | None = None,
        *,
        jobs: int = 2,
        memory_mb: int = DEFAULT_MEMORY_MB,
        sandbox: bool = True,
        wasmtime: str = "wasmtime",
        sysroot: Path | None = None,
        interpreter: Path | None = None,
    ) -> None:
        self.cargo = installed_tool(cargo or default_cargo(), "the Rust toolchain")
        self.jobs = jobs
        self.memory_mb = memory_mb
        self.sandbox = sandbox
        self.wasmtime = wasmtime
        self.sysroot = sysroot
        self.interpreter = interpreter or default_interpreter()

    async def build(self, request: BuildRequest) -> None:
        """Compiles the package in ``request.source_dir`` to ``out_dir/app``
        (or ``out_dir/app.wasm`` for the wasm target)."""
        wasm = request.runtime.target == RuntimeTarget.WASM
        wasmtime_dir = self._check_wasm() if wasm else None
        require_tool(self.cargo, "the Rust toolchain")
        deadline = Deadline(request.timeout_secs)
        request.cache_dir.mkdir(parents=True, exist_ok=True)
        async with _exclusive(request.cache_dir / "rust-build.lock", deadline, request):
            await self._build(request, deadline, wasmtime_dir)

    def _check_wasm(self) -> Path:
        """The ``wasmtime`` package's directory, once this host is known to
        build and run wasm apps; FailedPrecondition saying what is missing
        otherwise."""
        missing = []
        if not (self._wasm_sysroot() / "lib" / "rustlib" / WASM_TARGET).is_dir():
            missing.append(f"the {WASM_TARGET} Rust target (rustup target add {WASM_TARGET})")
        wasmtime_dir = _package_dir(self.wasmtime)
        if wasmtime_dir is None:
            missing.append(f"the {self.wasmtime!r} Python package (Wasmtime), which runs wasm apps")
        if missing or wasmtime_dir is None:
            raise FailedPrecondition(
                f"--rust-target wasm ({WASM_TARGET}) is not available: this host lacks "
                + " and ".join(missing),
                reason="WASM_TARGET_UNAVAILABLE",
                metadata={"target": WASM_TARGET},
            )
        return wasmtime_dir

    def _sysroot(self) -> Path:
        # The toolchain directory: <sysroot>/bin/cargo.
        return self.cargo.resolve().parent.parent

    def _wasm_sysroot(self) -> Path:
        return self.sysroot or self._sysroot()

    async def _build(
        self, request: BuildRequest, deadline: Deadline, wasmtime_dir: Path | None
    ) -> None:
        """Builds for wasm32-wasip2 when ``wasmtime_dir`` (the package that
        will run the component) is given, else natively."""
        wasm = wasmtime_dir is not None
        work = request.cache_dir / "work"
        package = work / "package"
        cargo_home = request.cache_dir / "cargo-home"
        target_dir = request.cache_dir / "target"
        locks = request.cache_dir / "lockfiles"
        for path in (cargo_home, target_dir, locks):
            path.mkdir(parents=True, exist_ok=True)
        prepared = await asyncio.to_thread(
            _prepare_package, request.source_dir, package, locks, wasm
        )
        for note in prepared.notes:
            request.log(note)

        artifacts = _Artifacts(manifest_path=str(package / "Cargo.toml"))
        argv = [
            str(self.cargo), "build", "--release",
            "--target", WASM_TARGET if wasm else NATIVE_TARGET,
            "--jobs", str(self.jobs),
            "--message-format", "json-render-diagnostics",
        ]  # fmt: skip
        env = {
            "PATH": f"{self.cargo.parent}:/usr/bin:/bin",
            "HOME": str(work),
            "CARGO_HOME": str(cargo_home),
            "CARGO_TARGET_DIR": str(target_dir),
            "CARGO_TERM_COLOR": "never",
            "CARGO_TERM_PROGRESS_WHEN": "never",
            **network_env(),
        }
        sandbox = (
            Sandbox(
                ro_paths=[self._sysroot(), SDK_ROOT],
                rw_paths=[work, cargo_home, target_dir],
            )
            if self.sandbox
            else None
        )
        request.log("$ cargo " + " ".join(argv[1:]))
        result = await run_step(
            argv,
            cwd=package,
            env=env,
            log=request.log,
            deadline=deadline,
            memory_mb=self.memory_mb,
            sandbox=sandbox,
            on_line=artifacts.consume,
        )
        if result.returncode != 0:
            raise BuildFailed(failure_reason("cargo build", result, self.memory_mb))
        binary = _pick_binary(artifacts.binaries, prepared.name)
        await asyncio.to_thread(
            _finish,
            package,
            binary,
            request.out_dir / (WASM_BINARY if wasm else BINARY),
            locks / prepared.lock_key,
        )
        if wasmtime_dir is None:
            write_launch_manifest(request.out_dir, [f"{CODE_PLACEHOLDER}/{BINARY}"])
            return
        await self._precompile(request, deadline, wasmtime_dir)
        host = [str(self.interpreter), "-S", "-B", str(WASM_HOST)]
        write_launch_manifest(
            request.out_dir,
            [*host, f"{CODE_PLACEHOLDER}/{WASM_BINARY}"],
            ro_paths=self._host_ro_paths(wasmtime_dir),
            env=_host_env(wasmtime_dir),
        )

    async def _precompile(
        self, request: BuildRequest, deadline: Deadline, wasmtime_dir: Path
    ) -> None:
        """Compiles app.wasm to app.cwasm with the Wasmtime pods run, so a
        cold start loads native code instead of compiling (the host falls
        back to compiling when the file does not fit its Wasmtime). Only
        Wasmtime's compiler runs here, sandboxed like the Cargo step."""
        wasm = request.out_dir / WASM_BINARY
        argv = [
            str(self.interpreter), "-S", "-B", str(WASM_HOST),
            "--precompile", str(wasm), str(wasm.with_suffix(".cwasm")),
        ]  # fmt: skip
        request.log("$ precompile app.wasm for Wasmtime")
        sandbox = (
            Sandbox(ro_paths=self._host_ro_paths(wasmtime_dir), rw_paths=[request.out_dir])
            if self.sandbox
            else None
        )
        result = await run_step(
            argv,
            cwd=request.out_dir,
            env={"PATH": "/usr/bin:/bin", **_host_env(wasmtime_dir)},
            log=request.log,
            deadline=deadline,
            memory_mb=self.memory_mb,
            sandbox=sandbox,
        )
        if result.returncode != 0:
            raise BuildFailed(failure_reason("precompiling app.wasm", result, self.memory_mb))

    def _host_ro_paths(self, wasmtime_dir: Path) -> list[str]:
        """What the Wasmtime host needs mounted: the interpreter's prefix
        (unless it is part of the base system), the host's directory and
        only the ``wasmtime`` package of the server's site-packages."""
        ro_paths = [str(WASM_HOST.parent), str(wasmtime_dir)]
        prefix = Path(sys.base_prefix).resolve()
        if not str(prefix).startswith("/usr"):
            ro_paths.insert(0, str(prefix))
        return ro_paths


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


@dataclass(frozen=True)
class _Prepared:
    """The package ready to build."""

    name: str
    #: The file name its resolved Cargo.lock is cached under.
    lock_key: str
    #: What the manifest rewrite changed that the user should know.
    notes: list[str]


def _host_env(wasmtime_dir: Path) -> dict[str, str]:
    """The Wasmtime host's own variables: ``wasmtime`` importable (the host
    runs without ``-I``, which would ignore PYTHONPATH)."""
    return {"PYTHONPATH": str(wasmtime_dir.parent), "PYTHONUNBUFFERED": "1"}


def _package_dir(name: str) -> Path | None:
    """The directory of the installed Python package ``name``, if any."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _prepare_package(source: Path, package: Path, locks: Path, wasm: bool = False) -> _Prepared:
    """Copies the user's package to ``package`` and rewrites its manifest."""
    shutil.rmtree(package, ignore_errors=True)
    # A target/ shipped in the archive is build output, never an input.
    copy_sources(source, package, skip_top_level=("target",))
    manifest_path = package / "Cargo.toml"
    if not manifest_path.is_file():
        if not any((package / "src" / name).is_file() for name in ("lib.rs", "main.rs")):
            raise BuildFailed("the archive has no Cargo.toml at its root")
        # A single uploaded source file: the smallest package around it.
        manifest_path.write_text(DEFAULT_CARGO_TOML)
    try:
        manifest = tomlkit.parse(manifest_path.read_text())
    except (TOMLKitError, UnicodeDecodeError) as error:
        raise BuildFailed(f"Cargo.toml is not valid TOML: {error}") from None
    notes = rewrite_cargo_manifest(manifest, package, wasm=wasm)
    text = tomlkit.dumps(manifest)
    manifest_path.write_text(text)

    digest = hashlib.sha256(text.encode())
    for sdk_manifest in sorted(SDK_ROOT.glob("*/Cargo.toml")):
        digest.update(sdk_manifest.read_bytes())
    key = digest.hexdigest() + ".lock"
    if not (package / "Cargo.lock").exists() and (locks / key).exists():
        shutil.copy(locks / key, package / "Cargo.lock")
    return _Prepared(name=str(manifest["package"]["name"]), lock_key=key, notes=notes)


def rewrite_cargo_manifest(manifest: Any, package: Path, *, wasm: bool = False) -> list[str]:
    """Edits ``manifest`` (a Cargo.toml parsed by tomlkit) of the package in
    directory ``package`` in place, as the module docstring describes; may
    write the generated entry binary's source under ``package``. ``wasm``:
    the package is built for wasm32-wasip2. Returns notes for the build log.
    Raises BuildFailed for packages it cannot build."""
    notes: list[str] = []
    if "package" not in manifest:
        raise BuildFailed("Cargo.toml has no [package]: the archive must be one Cargo package")
    package_table = manifest["package"]
    for key in list(package_table.keys()):
        if _inherits(package_table[key]):
            # Fields a package usually inherits; the rest need no value.
            if key == "edition":
                package_table[key] = "2021"
            elif key == "version":
                package_table[key] = "0.0.0"
            else:
                del package_table[key]
            notes.append(f"note: package.{key} was inherited from a workspace; not built as one")
    package_table.pop("workspace", None)
    if "workspace" not in manifest:
        # Stop Cargo from looking for a workspace in the directories above.
        manifest["workspace"] = tomlkit.table()

    if "dependencies" not in manifest:
        manifest["dependencies"] = tomlkit.table()
    dependencies = manifest["dependencies"]
    previous = dependencies.get("ignite")
    if previous is not None and previous != "*" and not _inherits(previous):
        notes.append("note: the ignite dependency is replaced by the platform's bundled SDK")
    sdk = tomlkit.inline_table()
    sdk["path"] = str(SDK_CRATE)
    dependencies["ignite"] = sdk
    for name, spec in INJECTED_DEPENDENCIES.items():
        if wasm and name in NATIVE_ONLY_DEPENDENCIES:
            continue
        if name not in dependencies or _inherits(dependencies[name]):
            dependencies[name] = spec
    for name in list(dependencies.keys()):
        if _inherits(dependencies[name]):
            notes.append(f"note: {name} was inherited from a workspace; using its latest version")
            dependencies[name] = "*"

    has_main = (package / "src" / "main.rs").exists()
    has_bins = "bin" in manifest or (package / "src" / "bin").is_dir()
    if not has_main and not has_bins:
        if not (package / "src" / "lib.rs").exists():
            raise BuildFailed("the package has neither src/main.rs nor src/lib.rs")
        _add_entry_binary(manifest, package)
    return notes


def _add_entry_binary(manifest: Any, package: Path) -> None:
    """The binary of a library-only package: main() calls the entry point
    that #[ignite::main] generated in the library."""
    library = manifest.get("lib") or {}
    crate_types = library.get("crate-type")
    if crate_types is not None and not {"lib", "rlib"} & set(crate_types):
        # A binary can only link the library as an rlib.
        crate_types.append("rlib")
    crate = str(library.get("name") or manifest["package"]["name"]).replace("-", "_")
    entry = package / GENERATED_BIN_PATH
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(
        "// Generated by Ignite: the binary of a library whose handler carries\n"
        "// #[ignite::main].\n"
        f"fn main() {{\n    {crate}::__ignite_entry()\n}}\n"
    )
    binary = tomlkit.table()
    binary["name"] = GENERATED_BIN
    binary["path"] = GENERATED_BIN_PATH
    bins = tomlkit.aot()
    bins.append(binary)
    manifest["bin"] = bins


def _inherits(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("workspace") is True


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
