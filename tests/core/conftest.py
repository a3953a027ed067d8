"""Fixtures for the invoker tests: real builds (PythonPipeline), real
sandboxed pods (LocalBackend) and one Activator per test worker, shared by the
tests; every test uses apps of its own, so they stay independent."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ulid import ULID

from ignite_server.builds.jail import BuildSpace
from ignite_server.builds.python import PythonPipeline
from ignite_server.core.activator import Activator
from ignite_server.domain.models import (
    App,
    CodeKind,
    DeploymentMode,
    InvocationRequest,
    Limits,
    Resources,
    ResourceTier,
    ResponseChunk,
    ResponseHead,
    ResponseTrailer,
    RunTarget,
    RuntimeKind,
    RuntimeSpec,
    ScaleMetric,
    Scaling,
    StorageMode,
    Version,
    VersionStatus,
)
from ignite_server.ports.build_pipeline import BuildRequest
from ignite_server.ports.pod_backend import PodLogRecord
from tests.support import local_invoker


@dataclass
class Builder:
    """Builds apps from {path: content} with the real Python pipeline, as
    one organization of the session's build space."""

    root: Path
    space: BuildSpace
    logs: list[str] = field(default_factory=list)

    async def __call__(self, files: Mapping[str, str | bytes]) -> Path:
        digest = hashlib.sha256(json.dumps(sorted(_as_text(files).items())).encode()).hexdigest()
        out = self.root / "artifacts" / digest[:16]
        if out.exists():
            return out
        src = self.root / "src" / uuid.uuid4().hex
        for name, content in files.items():
            path = src / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        staging = self.root / "artifacts" / f".{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        request = BuildRequest(
            runtime=RuntimeSpec(RuntimeKind.PYTHON, "3.11"),
            source_dir=src,
            out_dir=staging,
            organization="invoker-tests",
            log=self.logs.append,
        )
        await PythonPipeline(self.space).build(request)
        staging.rename(out)
        return out


def _as_text(files: Mapping[str, str | bytes]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else v.hex() for k, v in files.items()}


def make_target(
    artifact: Path,
    *,
    org: str = "acme-corp",
    name: str | None = None,
    version: int = 1,
    env: Mapping[str, str] | None = None,
    memory_mb: int = 256,
    cpu_millicores: int = 1000,
    timeout_secs: int = 30,
    max_concurrency: int = 0,
    max_replicas: int = 10,
    reserved_capacity: int = 0,
    scale_threshold: int = 0,
    scale_metric: ScaleMetric = ScaleMetric.CONCURRENCY,
    scaledown_period_secs: int = 300,
) -> RunTarget:
    """A RunTarget as the lifecycle would hand it to the invoker."""
    app = App(
        organization=org,
        name=name or f"app{uuid.uuid4().hex[:10]}",
        runtime=RuntimeSpec(RuntimeKind.PYTHON, "3.11"),
        tier=ResourceTier.SMALL,
        limits=Limits(),
        scaling=Scaling(
            max_replicas=max_replicas,
            reserved_capacity=reserved_capacity,
            scale_threshold=scale_threshold,
            scale_metric=scale_metric,
            scaledown_period_secs=scaledown_period_secs,
        ),
        env=dict(env or {}),
        storage_mode=StorageMode.PERSISTENT,
        ttl_seconds=0,
        description="",
        input_schema="",
        output_schema="",
        mcp_enabled=False,
        max_concurrency=max_concurrency,
        allow_unauthenticated=False,
        active_version=version,
        code_kind=CodeKind.SDK,
        deployment_mode=DeploymentMode.COMPILATION,
        image_ref="",
        created_at_ms=0,
        updated_at_ms=0,
    )
    ver = Version(
        organization=org,
        app=app.name,
        version=version,
        status=VersionStatus.ACTIVE,
        code_hash="",
        code_kind=CodeKind.SDK,
        runtime=app.runtime,
        created_at_ms=0,
        code_size_bytes=0,
    )
    return RunTarget(
        app=app,
        version=ver,
        resources=Resources(memory_mb, cpu_millicores, timeout_secs),
        artifact_dir=artifact,
    )


@dataclass
class Answer:
    """A whole invocation, as the frames told it."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    execution_id: str
    trailer: ResponseTrailer
    chunk_sizes: list[int]

    def json(self) -> object:
        return json.loads(self.body)


async def call(
    invoker: Activator,
    target: RunTarget,
    body: bytes = b"",
    *,
    method: str = "POST",
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    execution_id: str | None = None,
) -> Answer:
    """Invoke and collect the frames, checking their order."""
    execution_id = execution_id or str(ULID())
    request = InvocationRequest(method, path, "", dict(headers or {}), body)
    frames = [f async for f in invoker.invoke(target, request, execution_id)]
    head, *chunks, trailer = frames
    assert isinstance(head, ResponseHead)
    assert isinstance(trailer, ResponseTrailer)
    assert all(isinstance(c, ResponseChunk) for c in chunks)
    data = b"".join(c.data for c in chunks)  # type: ignore[union-attr]
    assert trailer.total_body_bytes == len(data)
    return Answer(
        head.status_code,
        head.headers,
        data,
        head.execution_id,
        trailer,
        [len(c.data) for c in chunks],  # type: ignore[union-attr]
    )


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("invoker")


@pytest.fixture(scope="session")
def build(workdir: Path, build_space: BuildSpace) -> Builder:
    return Builder(workdir, build_space)


@pytest.fixture(scope="session")
def app_logs() -> list[PodLogRecord]:
    """Every log record of every pod of the shared invoker."""
    return []


@pytest.fixture(scope="session")
async def invoker(workdir: Path, app_logs: list[PodLogRecord]) -> AsyncIterator[Activator]:
    """One sandboxed invoker per test worker."""
    inv = local_invoker(workdir / "state", sandbox="required", log_sink=app_logs.append)
    yield inv
    await inv.close()
