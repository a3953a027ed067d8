"""How the Rust pipeline makes the user's Cargo package buildable on its own.

The package is copied into the build directory and its Cargo.toml rewritten:

1. ``ignite`` (``"*"``, ``{ workspace = true }``, absent, anything) becomes a
   path dependency on the bundled SDK (runtimes/rust/ignite); ``serde`` (with
   ``derive``), ``serde_json`` and, for native builds, ``tokio`` are added
   when absent, and any other ``{ workspace = true }`` is resolved, since the
   archive is built on its own (an empty ``[workspace]`` makes it its own
   root);
2. a package with only ``src/lib.rs`` gets a binary: ``#[ignite::main]``
   emits a public ``__ignite_entry()`` next to the handler, and the rewrite
   adds a ``[[bin]]`` target named ``ignite-app`` whose ``main`` calls
   ``<crate>::__ignite_entry()``;
3. a lone ``src/lib.rs`` or ``src/main.rs`` (no Cargo.toml) gets the smallest
   package around it.

The SDK is referred to where every build's jail shows it (``SDK_IN_JAIL``),
never by a path of the server's. When the archive has no Cargo.lock, the lock
file Cargo resolved for the same rewritten manifest last time in the
organization's cache is reused (``lock_key`` names it), so a rebuild does not
query the registry again.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ignite_server.builds.launch_manifest import copy_sources
from ignite_server.ports.build_pipeline import BuildFailed

#: The bundled SDK crates (``ignite`` and its proc-macro crate).
SDK_ROOT = Path(__file__).resolve().parents[2] / "runtimes" / "rust"
#: Where builds see SDK_ROOT (read-only), and the ``ignite`` crate in it.
SDK_IN_JAIL = "/sdk/rust"
SDK_CRATE = f"{SDK_IN_JAIL}/ignite"
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


@dataclass(frozen=True)
class PreparedPackage:
    """The package ready to build."""

    name: str
    #: The file name its resolved Cargo.lock is cached under.
    lock_key: str
    #: What the manifest rewrite changed that the user should know.
    notes: list[str]


def prepare_package(source: Path, package: Path, wasm: bool = False) -> PreparedPackage:
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
    return PreparedPackage(name=str(manifest["package"]["name"]), lock_key=key, notes=notes)


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
    sdk["path"] = SDK_CRATE
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
