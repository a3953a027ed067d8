"""The build port: one pipeline per managed runtime turns source into an
artifact directory a pod can run.

The lifecycle extracts the uploaded code (checked by domain/archives.py)
into ``source_dir`` and gives each build an empty ``out_dir``, both folders
of the server's that no build can write; the pipeline runs the build in a
sandbox of its own (builds/jail.py) that sees the source read-only and its
organization's caches, and unpacks the checked output into ``out_dir``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ignite_server.domain.models import RuntimeKind, RuntimeSpec


class BuildFailed(Exception):
    """The user's code did not build; ``message`` is the one-line reason and the
    full compiler output is already in the build log."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class BuildRequest:
    runtime: RuntimeSpec
    source_dir: Path
    out_dir: Path
    #: Whose build it is: caches, quota and the build's sandbox are the
    #: organization's own.
    organization: str
    #: Receives the build's output line by line (without trailing newline).
    log: Callable[[str], None]
    build_args: Mapping[str, str] = field(default_factory=dict)
    #: Wall-clock limit of the whole build.
    timeout_secs: int = 600


class BuildPipeline(Protocol):
    """Builds one runtime's apps."""

    #: The runtime this pipeline builds.
    kind: RuntimeKind
    #: True when PublishDraft refuses a draft that was not compiled with
    #: CompileDraft first (Rust, seed 003); otherwise publish builds itself.
    explicit_compile: bool

    async def build(self, request: BuildRequest) -> None:
        """Build ``request.source_dir`` into ``request.out_dir``.

        Raises BuildFailed for errors in the user's code or dependencies.
        """
        ...
