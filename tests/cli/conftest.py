"""Fixtures of the CLI tests: the installed ``dodil`` executable, run as a
user runs it, each test with a config directory of its own."""

from __future__ import annotations

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
