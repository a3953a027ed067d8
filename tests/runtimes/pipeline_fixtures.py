"""One factory for the fixtures of the compiled runtimes' pipeline tests.

A test module names its runtime once and gets session fixtures that build
its apps (each at most once per session and test worker) as one
organization of the session's build space, whose builds share a cache as
the server's builds of an organization do, and start them::

    builder = builder_fixture(RuntimeKind.GO, GoPipeline)
    seed_artifact = artifact_fixture(SEED_FILES)
    seed_pod = pod_fixture(SEED_FILES)  # that artifact, running

Tests that build apps of their own take ``builder`` (its organization) and
``tmp_path``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ignite_server.builds.jail import BuildSpace
from ignite_server.domain.models import RuntimeKind, RuntimeSpec, RuntimeTarget
from ignite_server.ports.build_pipeline import BuildFailed, BuildPipeline, BuildRequest
from tests.runtimes.launch import Pod, launched
from tests.support import unique_name

#: An app's sources: relative path → text.
Files = Mapping[str, str]


@dataclass
class Build:
    """A build's request plus the log lines it produced."""

    request: BuildRequest
    log: list[str]

    @property
    def log_text(self) -> str:
        return "\n".join(self.log)


def build_request(
    kind: RuntimeKind,
    source_dir: Path,
    out_dir: Path,
    organization: str,
    *,
    target: RuntimeTarget = RuntimeTarget.UNSPECIFIED,
    build_args: Mapping[str, str] | None = None,
    timeout_secs: int = 1200,
) -> Build:
    """A BuildRequest whose log is collected in memory."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    request = BuildRequest(
        runtime=RuntimeSpec(kind=kind, target=target),
        source_dir=source_dir,
        out_dir=out_dir,
        organization=organization,
        log=lines.append,
        build_args=dict(build_args or {}),
        timeout_secs=timeout_secs,
    )
    return Build(request, lines)


def write_tree(root: Path, files: Files) -> Path:
    """Writes ``files`` (relative path → text) under ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@dataclass
class AppBuilder:
    """Builds one runtime's test apps with a fresh ``pipeline(space)`` each
    time, all as ``organization`` (so with its cache), for ``target``."""

    kind: RuntimeKind
    pipeline: Callable[[BuildSpace], BuildPipeline]
    space: BuildSpace
    organization: str
    #: Where the session's apps (``artifact``) are built.
    workdir: Path
    target: RuntimeTarget = RuntimeTarget.UNSPECIFIED
    _artifacts: dict[tuple[tuple[str, str], ...], Path] = field(default_factory=dict)
    _build_secs: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)

    @classmethod
    def fresh(
        cls,
        tmp_path_factory: pytest.TempPathFactory,
        space: BuildSpace,
        kind: RuntimeKind,
        pipeline: Callable[[BuildSpace], BuildPipeline],
        target: RuntimeTarget = RuntimeTarget.UNSPECIFIED,
    ) -> AppBuilder:
        """A builder of an organization of its own (an empty cache) with a
        work directory of its own."""
        workdir = tmp_path_factory.mktemp(f"{kind.value}-apps")
        return cls(kind, pipeline, space, unique_name(kind.value), workdir, target)

    def request(self, root: Path, files: Files) -> Build:
        """``files`` written under ``root/src`` and a request that builds them
        into ``root/out``."""
        source = write_tree(root / "src", files)
        return build_request(self.kind, source, root / "out", self.organization, target=self.target)

    async def build(self, root: Path, files: Files) -> Path:
        """Builds ``files`` under ``root``; the artifact directory."""
        build = self.request(root, files)
        await self.pipeline(self.space).build(build.request)
        return build.request.out_dir

    async def failure(self, root: Path, files: Files) -> tuple[Build, BuildFailed]:
        """Builds ``files``, which must fail: the build (its log) and why."""
        build = self.request(root, files)
        with pytest.raises(BuildFailed) as failed:
            await self.pipeline(self.space).build(build.request)
        return build, failed.value

    async def artifact(self, files: Files) -> Path:
        """``files`` built once for the session."""
        key = tuple(sorted(files.items()))
        if key not in self._artifacts:
            root = self.workdir / f"app-{len(self._artifacts)}"
            started = time.monotonic()
            self._artifacts[key] = await self.build(root, files)
            self._build_secs[key] = time.monotonic() - started
        return self._artifacts[key]

    def build_secs(self, files: Files) -> float:
        """How long ``artifact(files)`` took to build."""
        return self._build_secs[tuple(sorted(files.items()))]


def builder_fixture(
    kind: RuntimeKind,
    pipeline: Callable[[BuildSpace], BuildPipeline],
    target: RuntimeTarget = RuntimeTarget.UNSPECIFIED,
    *,
    first: Sequence[Files] = (),
) -> Any:
    """A session fixture: an AppBuilder with an empty cache of its own, which
    builds the apps ``first``, in that order, before anything else does."""

    @pytest.fixture(scope="session")
    async def builder(
        tmp_path_factory: pytest.TempPathFactory, build_space: BuildSpace
    ) -> AppBuilder:
        made = AppBuilder.fresh(tmp_path_factory, build_space, kind, pipeline, target)
        for files in first:
            await made.artifact(files)
        return made

    return builder


def artifact_fixture(files: Files) -> Any:
    """A session fixture: ``files`` built by the module's ``builder``."""

    @pytest.fixture(scope="session")
    async def artifact(builder: AppBuilder) -> Path:
        return await builder.artifact(files)

    return artifact


def pod_fixture(files: Files) -> Any:
    """A session fixture: ``files`` built by the module's ``builder`` (the
    same artifact as ``artifact_fixture(files)``) and started."""

    @pytest.fixture(scope="session")
    async def pod(builder: AppBuilder) -> AsyncIterator[Pod]:
        async with launched(await builder.artifact(files)) as running:
            yield running

    return pod
