"""Dependencies point one way, and `make lint` says so: the import
contracts in pyproject.toml hold, and breaking one fails the check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("ignite_server", "ignite_gateway", "dodil_cli", "ignite_launcher", "ignite_common")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT / 'gen'}"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tree)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tree


def test_the_contracts_hold_and_a_broken_one_fails(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    kept = _lint(tree)
    assert kept.returncode == 0, kept.stdout[-3000:]
    assert "0 broken" in kept.stdout

    # core reaching for the local pod backend breaks two contracts.
    (tree / "ignite_server" / "core" / "probe.py").write_text(
        "from ignite_server.backends.local import LocalBackend\n"
    )
    broken = _lint(tree)
    assert broken.returncode != 0
    assert "core does not import the local pod backend BROKEN" in broken.stdout
    assert "core reaches the outside only through ports BROKEN" in broken.stdout
    (tree / "ignite_server" / "core" / "probe.py").unlink()

    # One pod backend borrowing from the other (the pod protocol has a home
    # of its own), and core reading the server's flags, break theirs.
    (tree / "ignite_server" / "backends" / "kubernetes" / "probe.py").write_text(
        "from ignite_server.backends.local.pod_client import http_once\n"
    )
    (tree / "ignite_server" / "core" / "settings_probe.py").write_text(
        "from ignite_server.config import Config\n"
    )
    broken = _lint(tree)
    assert broken.returncode != 0
    assert "the pod backends are independent of each other BROKEN" in broken.stdout
    # (import-linter wraps long contract names over lines)
    said = " ".join(broken.stdout.split())
    layers = re.search(r"server layers: composition root, config, [a-z, ]*? (KEPT|BROKEN)", said)
    assert layers is not None and layers.group(1) == "BROKEN", said


def _imports(folder: Path, pattern: str) -> list[str]:
    found = []
    for path in folder.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.match(rf"\s*(from|import)\s+{pattern}", line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_forbidden_import_is_written_anywhere() -> None:
    server = ROOT / "ignite_server"
    assert not _imports(server / "core", r"ignite_server\.backends\.local")
    assert not _imports(server / "api", r"ignite_server\.store")
    assert not _imports(server / "domain", r"ignite_server\.(core|store|builds|backends)")
    assert not _imports(server / "domain", r"ignite_server\.(api|ports|containment)")
    assert not _imports(server / "backends" / "kubernetes", r"ignite_server\.backends\.local")
    assert not _imports(server / "backends" / "local", r"ignite_server\.backends\.kubernetes")
