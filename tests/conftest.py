"""Session fixtures: one real platform (PostgreSQL, server, gateway, pods)
per test worker, shared by every end-to-end test of that worker; tests stay
independent by working in organizations of their own."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc

from ignite_server.launcher import LocalPlatform, private_state_dir
from tests.support import stub_for, unique_name


def _gateway_available() -> bool:
    return importlib.util.find_spec("ignite_gateway.__main__") is not None


@pytest.fixture(scope="session")
def platform() -> Iterator[LocalPlatform]:
    """The whole platform as a user runs it."""
    state = private_state_dir("ignite-test-")
    gateway_port = 0 if _gateway_available() else None
    with LocalPlatform(state, gateway_port=gateway_port) as running:
        yield running


@pytest.fixture(scope="session")
def stub(platform: LocalPlatform) -> compute_grpc.ComputeServiceStub:
    return stub_for(platform.grpc_target)


@pytest.fixture
def org() -> str:
    """An organization no other test uses."""
    return unique_name("org")
