"""Fixtures of the CLI tests: the installed ``dodil`` executable, run as a
user runs it, each test with a config directory of its own."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ignite_launcher import LocalPlatform
from tests.cli.runner import Dodil


@pytest.fixture
def dodil(tmp_path: Path) -> Dodil:
    """dodil with an empty config, working in a fresh directory."""
    work = tmp_path / "work"
    work.mkdir()
    return Dodil(config_home=tmp_path / "xdg", cwd=work)


@pytest.fixture
def ignite(dodil: Dodil, platform: LocalPlatform, org: str) -> Iterator[Dodil]:
    """dodil configured for the test platform with an organization of its own."""
    dodil("ignite", "config", "set", "api_endpoint", platform.grpc_target).ok()
    dodil("ignite", "config", "set", "organization", org).ok()
    yield dodil


#: The probe server image tests put in FROM-scratch images.
PROBE_SOURCE = Path(__file__).parents[1] / "backends" / "local" / "image_app"


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The probe container's server (tests/backends/local/image_app), built
    static for FROM-scratch images."""
    out = tmp_path_factory.mktemp("probe") / "server"
    subprocess.run(
        ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "main.go"],
        cwd=PROBE_SOURCE,
        env={**os.environ, "CGO_ENABLED": "0", "GO111MODULE": "off"},
        check=True,
        capture_output=True,
    )
    return out
