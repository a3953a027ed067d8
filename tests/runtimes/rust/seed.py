"""Seed 003's app as shipped in runtimes/rust/examples/hello, shared by the
native and the wasm tests."""

from __future__ import annotations

from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "runtimes" / "rust" / "examples" / "hello"
SEED_LIB_RS = (EXAMPLE / "src" / "lib.rs").read_text()
CARGO_TOML = (EXAMPLE / "Cargo.toml").read_text()
