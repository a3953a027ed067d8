"""How the Rust pipeline rewrites a package's Cargo.toml (no compiler run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomlkit

from ignite_server.builds.cargo_manifest import GENERATED_BIN, SDK_CRATE, rewrite_cargo_manifest
from ignite_server.ports.build_pipeline import BuildFailed


def rewrite(package: Path, cargo_toml: str, *sources: str) -> tuple[dict, list[str]]:
    for source in sources:
        (package / source).parent.mkdir(parents=True, exist_ok=True)
        (package / source).write_text("")
    manifest = tomlkit.parse(cargo_toml)
    notes = rewrite_cargo_manifest(manifest, package)
    # Through text, as Cargo will read it.
    return tomlkit.parse(tomlkit.dumps(manifest)).unwrap(), notes


def test_star_ignite_becomes_the_bundled_sdk_and_defaults_are_added(tmp_path: Path) -> None:
    cargo = '[package]\nname = "hello"\nversion = "0.1.0"\n\n[dependencies]\nignite = "*"\n'
    manifest, notes = rewrite(tmp_path, cargo, "src/main.rs")
    assert manifest["dependencies"] == {
        "ignite": {"path": SDK_CRATE},
        "serde": {"version": "1", "features": ["derive"]},
        "serde_json": "1",
        "tokio": {"version": "1", "features": ["full"]},
    }
    assert manifest["workspace"] == {}
    assert "bin" not in manifest
    assert notes == []


def test_the_users_own_versions_of_injected_crates_are_kept(tmp_path: Path) -> None:
    cargo = """[package]
name = "hello"
version = "0.1.0"

[dependencies]
tokio = { version = "1.40", features = ["rt"] }
serde_json = "=1.0.100"
"""
    manifest, _ = rewrite(tmp_path, cargo, "src/main.rs")
    assert manifest["dependencies"]["tokio"] == {"version": "1.40", "features": ["rt"]}
    assert manifest["dependencies"]["serde_json"] == "=1.0.100"
    assert manifest["dependencies"]["ignite"] == {"path": SDK_CRATE}


def test_workspace_inheritance_is_resolved(tmp_path: Path) -> None:
    cargo = """[package]
name = "hello"
version.workspace = true
edition = { workspace = true }
license.workspace = true

[dependencies]
ignite = { workspace = true }
serde = { workspace = true }
anyhow = { workspace = true }
"""
    manifest, notes = rewrite(tmp_path, cargo, "src/lib.rs")
    assert manifest["package"] == {"name": "hello", "version": "0.0.0", "edition": "2021"}
    dependencies = manifest["dependencies"]
    assert dependencies["ignite"] == {"path": SDK_CRATE}
    assert dependencies["serde"] == {"version": "1", "features": ["derive"]}
    assert dependencies["anyhow"] == "*"
    assert any("anyhow" in note for note in notes)


def test_library_only_package_gets_an_entry_binary(tmp_path: Path) -> None:
    cargo = '[package]\nname = "my-app"\nversion = "0.1.0"\n\n[lib]\ncrate-type = ["cdylib"]\n'
    manifest, _ = rewrite(tmp_path, cargo, "src/lib.rs")
    assert manifest["bin"] == [{"name": GENERATED_BIN, "path": ".ignite/main.rs"}]
    # The binary links the library, which needs an rlib of it.
    assert manifest["lib"]["crate-type"] == ["cdylib", "rlib"]
    entry = (tmp_path / ".ignite" / "main.rs").read_text()
    assert "my_app::__ignite_entry()" in entry


def test_a_package_without_sources_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match=r"src/main\.rs nor src/lib\.rs"):
        rewrite(tmp_path, '[package]\nname = "empty"\nversion = "0.1.0"\n')


def test_a_virtual_workspace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match=r"no \[package\]"):
        rewrite(tmp_path, '[workspace]\nmembers = ["a"]\n', "src/lib.rs")
