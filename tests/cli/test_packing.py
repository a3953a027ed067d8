"""Packing project directories: ignore rules and reproducible archives."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from dodil_cli.packing import iter_files, pack_directory


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _names(root: Path) -> list[str]:
    return [name for name, _ in iter_files(root)]


def test_gitignore_rules_apply(tmp_path):
    _tree(
        tmp_path,
        {
            ".gitignore": "*.pyc\n!keep.pyc\nbuild/\n/top-only.txt\n",
            "handler.py": "",
            "x.pyc": "",
            "keep.pyc": "",
            "build/out.bin": "",
            "sub/build/out.bin": "",
            "top-only.txt": "",
            "sub/top-only.txt": "",
            ".git/HEAD": "",
        },
    )
    assert _names(tmp_path) == [".gitignore", "handler.py", "keep.pyc", "sub/top-only.txt"]


def test_nested_gitignore_is_relative_to_its_directory(tmp_path):
    _tree(
        tmp_path,
        {
            "lib/.gitignore": "/data.json\n",
            "lib/data.json": "",
            "lib/deep/data.json": "",
            "data.json": "",
        },
    )
    assert _names(tmp_path) == ["data.json", "lib/.gitignore", "lib/deep/data.json"]


def test_igniteignore_overrides_gitignore(tmp_path):
    _tree(
        tmp_path,
        {
            ".gitignore": "dist/\nsecret.env\n",
            ".igniteignore": "!dist/\ntests/\n",
            "dist/app.js": "",
            "secret.env": "",
            "tests/test_x.py": "",
            "main.ts": "",
        },
    )
    assert _names(tmp_path) == [".gitignore", ".igniteignore", "dist/app.js", "main.ts"]


def test_files_inside_an_ignored_directory_cannot_be_reincluded(tmp_path):
    _tree(tmp_path, {".gitignore": "vendor/\n!vendor/keep.txt\n", "vendor/keep.txt": ""})
    assert _names(tmp_path) == [".gitignore"]


def test_links_outside_the_project_are_skipped(tmp_path):
    project, outside = tmp_path / "project", tmp_path / "outside"
    _tree(project, {"main.py": "x"})
    _tree(outside, {"secret": "s"})
    os.symlink(outside / "secret", project / "leak")
    os.symlink(project / "main.py", project / "alias.py")
    warnings: list[str] = []
    names = [name for name, _ in iter_files(project, warnings.append)]
    assert names == ["alias.py", "main.py"]
    assert any("leak" in w for w in warnings)


def test_archive_is_reproducible_and_keeps_the_executable_bit(tmp_path):
    _tree(
        tmp_path, {"src/lib.rs": "fn main() {}", "Cargo.toml": "[package]", "run.sh": "#!/bin/sh"}
    )
    (tmp_path / "run.sh").chmod(0o755)
    first = pack_directory(tmp_path)
    os.utime(tmp_path / "Cargo.toml", (1, 1))
    second = pack_directory(tmp_path)
    assert first.data == second.data
    assert first.files == ["Cargo.toml", "run.sh", "src/lib.rs"]
    with tarfile.open(fileobj=io.BytesIO(first.data), mode="r:gz") as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert set(members) == {"Cargo.toml", "run.sh", "src/lib.rs"}
        assert members["run.sh"].mode == 0o755
        assert members["Cargo.toml"].mode == 0o644
        assert members["src/lib.rs"].mtime == 0
        extracted = archive.extractfile("src/lib.rs")
        assert extracted is not None
        assert extracted.read() == b"fn main() {}"
