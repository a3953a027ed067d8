"""Turning ``-c/--code PATH`` into the CodeSource of a SaveDraft call.

A single file is sent as ``source_code`` (the runtime knows its entry file by
name: handler.py, main.go, lib.rs, main.ts); a directory is packed into a
tar.gz ``archive`` honouring its ignore files (see :mod:`dodil_cli.packing`);
a file that already is a ZIP or tar.gz archive (told by its first bytes, as
the server tells it) is sent as the ``archive``, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.errors import UsageError
from dodil_cli.packing import pack_directory
from dodil_cli.views import size


@dataclass(frozen=True)
class Upload:
    """The code to send and a one-line description of it."""

    source: compute.CodeSource
    summary: str


def check_code_path(path_text: str) -> Path:
    """The code path if it exists and is a file or directory, else UsageError."""
    path = Path(path_text)
    if not path.exists():
        raise UsageError(f"code not found: {path_text}")
    if not (path.is_file() or path.is_dir()):
        raise UsageError(f"code must be a file or a directory: {path_text}")
    return path


#: The first bytes of the archive formats the server accepts: ZIP, gzip.
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b")


def is_archive(data: bytes) -> bool:
    """Whether ``data`` is a ZIP or gzip (tar.gz) archive, by its magic bytes."""
    return data.startswith(_ARCHIVE_MAGIC)


def code_root(path: Path) -> Path:
    """The directory info.yaml is looked for in: the path, or a file's directory."""
    return path if path.is_dir() else path.parent


def build_upload(
    path: Path, runtime: common.Runtime, warn: Callable[[str], None] | None = None
) -> Upload:
    """The CodeSource for a file or directory."""
    compile_source = compute.CompileSource(runtime=runtime)
    if path.is_dir():
        try:
            packed = pack_directory(path, warn)
        except OSError as exc:
            raise UsageError(f"cannot pack {path}: {exc.strerror}: {exc.filename}") from None
        if not packed.files:
            raise UsageError(f"nothing to upload: {path} has no files (after ignore rules)")
        compile_source.archive = packed.data
        count = len(packed.files)
        summary = (
            f"{count} file{'s' if count != 1 else ''}, {size(packed.total_bytes)} "
            f"({size(len(packed.data))} packed)"
        )
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
        if not data:
            raise UsageError(f"{path} is empty")
        if is_archive(data):
            compile_source.archive = data
            summary = f"archive {path.name}, {size(len(data))}"
        else:
            compile_source.source_code = data
            summary = f"{path.name}, {size(len(data))}"
    return Upload(compute.CodeSource(compile=compile_source), summary)
