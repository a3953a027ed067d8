"""Session fixtures: one real platform (PostgreSQL, server, gateway, pods)
per test worker, shared by every end-to-end test of that worker; tests stay
independent by working in organizations of their own."""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Iterator

import pytest
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc

from ignite_launcher import TEMPORARY_STATE_DIRS, LocalPlatform, private_state_dir
from tests.support import PlainRegistry, stub_for, unique_name


def _gateway_available() -> bool:
    return importlib.util.find_spec("ignite_gateway.__main__") is not None


@pytest.fixture(scope="session")
def user_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a registry on loopback standing for a user's own public
    one (Docker Hub, ghcr.io), started before the platform so that the
    platform can be told to reach it over plain HTTP; "" without
    docker-registry (image apps are unavailable then anyway)."""
    if shutil.which("docker-registry") is None:
        yield ""
        return
    registry = PlainRegistry(tmp_path_factory.mktemp("user-registry"))
    yield registry.host
    registry.close()


@pytest.fixture(scope="session")
def platform(user_registry: str) -> Iterator[LocalPlatform]:
    """The whole platform as a user runs it. The tests' own registries, git
    daemons and sinks listen on loopback, which the platform refuses to
    reach on a user's behalf unless its operator allows it: this one's
    operator does, for 127.0.0.1."""
    state = private_state_dir("ignite-test-")
    gateway_port = 0 if _gateway_available() else None
    args = ("--egress-allow", "127.0.0.1")
    if user_registry:
        args += ("--insecure-registries", user_registry)
    with LocalPlatform(state, gateway_port=gateway_port, server_args=args) as running:
        yield running


@pytest.fixture(scope="session")
def stub(platform: LocalPlatform) -> compute_grpc.ComputeServiceStub:
    return stub_for(platform.grpc_target)


@pytest.fixture
def org() -> str:
    """An organization no other test uses."""
    return unique_name("org")


#: Secrets Ignite hands out, and the canaries tests plant as env values: none
#: may ever appear in a log line.
_SECRET_PATTERNS = (
    re.compile(r"ign_[A-Za-z0-9_-]{40,}"),  # service-account secrets
    re.compile(r"canary-env-[0-9a-f]{32}"),  # env canaries (tests/api/test_identity.py)
    re.compile(r"canary-secret-[0-9a-f]{32}"),  # secret passwords (tests/api/test_secrets.py)
)


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log() -> Iterator[None]:
    """After the whole session, read every log its platforms wrote (server,
    gateway) and fail if a secret or a planted canary is in one; then remove
    their state directories."""
    yield
    leaks = []
    for state in TEMPORARY_STATE_DIRS:
        for log in state.glob("logs/*.log"):
            text = log.read_text(errors="replace")
            for pattern in _SECRET_PATTERNS:
                leaks += [f"{log}: {m.group(0)[:12]}…" for m in pattern.finditer(text)]
    for state in TEMPORARY_STATE_DIRS:
        shutil.rmtree(state, ignore_errors=True)
    assert not leaks, "secrets in logs:\n" + "\n".join(leaks)
