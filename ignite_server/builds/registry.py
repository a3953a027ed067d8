"""The build pipelines this platform offers, one per managed runtime."""

from __future__ import annotations

import importlib

import structlog

from ignite_server.builds.jail import BuildSpace
from ignite_server.domain.build_settings import BuildSettings
from ignite_server.domain.models import RuntimeKind
from ignite_server.ports.build_pipeline import BuildPipeline

log = structlog.get_logger(__name__)

#: runtime → (module, class) of its pipeline.
_PIPELINES: dict[RuntimeKind, tuple[str, str]] = {
    RuntimeKind.PYTHON: ("ignite_server.builds.python", "PythonPipeline"),
    RuntimeKind.GO: ("ignite_server.builds.go", "GoPipeline"),
    RuntimeKind.RUST: ("ignite_server.builds.rust", "RustPipeline"),
    RuntimeKind.DENO: ("ignite_server.builds.deno", "DenoPipeline"),
}


def default_pipelines(
    space: BuildSpace, settings: BuildSettings | None = None
) -> dict[RuntimeKind, BuildPipeline]:
    """Every pipeline whose toolchain is present, building in ``space`` as
    ``settings`` say; a missing one is logged and its runtime answers
    RUNTIME_UNAVAILABLE."""
    settings = settings or BuildSettings()
    found: dict[RuntimeKind, BuildPipeline] = {}
    options: dict[RuntimeKind, dict[str, object]] = {
        RuntimeKind.PYTHON: {
            "index_url": settings.pip_index_url,
            "allow_sdists": settings.pip_allow_sdists,
        }
    }
    for kind, (module_name, class_name) in _PIPELINES.items():
        try:
            module = importlib.import_module(module_name)
            found[kind] = getattr(module, class_name)(space, **options.get(kind, {}))
        except (ImportError, AttributeError, OSError) as err:
            log.warning("build.pipeline_unavailable", runtime=kind.value, error=str(err))
    return found
