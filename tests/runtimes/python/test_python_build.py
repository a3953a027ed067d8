"""PythonPipeline on its own: the artifact it writes and the builds it fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ignite_server.builds.jail import BuildSpace
from ignite_server.builds.python import PythonPipeline
from ignite_server.domain.models import RuntimeKind, RuntimeSpec
from ignite_server.ports.build_pipeline import BuildFailed, BuildRequest
from ignite_server.ports.launch_manifest import LaunchManifest


async def _build(
    space: BuildSpace,
    tmp_path: Path,
    files: dict[str, str],
    version: str = "3.11",
    logs: list[str] | None = None,
) -> list[str]:
    src = tmp_path / "src"
    for name, content in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(content)
    logs = [] if logs is None else logs
    request = BuildRequest(
        runtime=RuntimeSpec(RuntimeKind.PYTHON, version),
        source_dir=src,
        out_dir=tmp_path / "out",
        organization="python-builds",
        log=logs.append,
    )
    request.out_dir.mkdir(parents=True)
    await PythonPipeline(space).build(request)
    return logs


async def test_the_artifact_holds_the_code_compiled_and_a_launch_manifest(
    tmp_path: Path, build_space: BuildSpace
) -> None:
    await _build(
        build_space, tmp_path, {"handler.py": "def handler(p, c):\n    return 1\n", "lib/x.py": ""}
    )
    out = tmp_path / "out"
    assert (out / "app" / "handler.py").is_file()
    assert (out / "app" / "lib" / "x.py").is_file()
    assert list((out / "app" / "__pycache__").glob("handler.cpython-311.pyc"))
    assert (out / "deps").is_dir()
    manifest = LaunchManifest.load(out)
    assert manifest.prestart == "python3.11"
    assert manifest.argv[-1].endswith("runtimes/python/ignite_runtime.py")
    assert json.loads((out / "ignite-launch.json").read_text())["env"]["PYTHONUNBUFFERED"] == "1"


async def test_a_syntax_error_in_the_handler_fails_the_build(
    tmp_path: Path, build_space: BuildSpace
) -> None:
    with pytest.raises(BuildFailed, match=r"handler\.py line 2"):
        await _build(build_space, tmp_path, {"handler.py": "def handler(p, c):\nreturn 1\n"})


async def test_a_missing_handler_file_or_another_python_fails_the_build(
    tmp_path: Path, build_space: BuildSpace
) -> None:
    with pytest.raises(BuildFailed, match=r"handler\.py is missing"):
        await _build(build_space, tmp_path / "a", {"main.py": "x = 1\n"})
    with pytest.raises(BuildFailed, match=r"Python 3\.12 is not available"):
        await _build(
            build_space,
            tmp_path / "b",
            {"handler.py": "def handler(p, c):\n    return 1\n"},
            "3.12",
        )


async def test_a_failed_requirements_install_fails_the_build(
    tmp_path: Path, build_space: BuildSpace
) -> None:
    files = {
        "handler.py": "def handler(payload, ctx):\n    return 1\n",
        "requirements.txt": "ignite-no-such-package-4e1c9a==0.0.1\n",
    }
    logs: list[str] = []
    with pytest.raises(BuildFailed) as caught:
        await _build(build_space, tmp_path, files, logs=logs)
    assert "requirements.txt" in caught.value.message
    # pip's own words are in the build log.
    assert any("No matching distribution" in line for line in logs)
