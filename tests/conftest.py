"""Session fixtures: one real platform (PostgreSQL, server, gateway, pods)
per test worker, shared by every end-to-end test of that worker; tests stay
independent by working in organizations of their own."""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc

from ignite_launcher import TEMPORARY_STATE_DIRS, LocalPlatform, private_state_dir
from ignite_server.builds.jail import BuildSpace
from tests.support import PlainRegistry, allowed_services, stub_for, unique_name

ROOT = Path(__file__).resolve().parent.parent

#: The fast tier (`make test-fast`, docs/testing.md): modules whose tests
#: need no PostgreSQL, no platform, no pods and no toolchain, running core,
#: the gateway, the CLI and the object builders against fakes of the ports.
#: ``make test`` runs them with everything else, once.
FAST_MODULES = frozenset(
    {
        "tests/test_addresses.py",
        "tests/test_docs.py",
        "tests/test_layers.py",
        "tests/test_task_supervisor.py",
        "tests/domain/test_requirements.py",
        "tests/core/test_activation.py",
        "tests/core/test_executions_service.py",
        "tests/core/test_log_buffer.py",
        "tests/core/test_paging_and_settings.py",
        "tests/core/test_tokens.py",
        "tests/core/test_archives.py",
        "tests/core/test_autoscaler.py",
        "tests/core/test_capacity.py",
        "tests/core/test_consumer_hang_up.py",
        "tests/core/test_revision_throttler.py",
        "tests/core/test_rollout_judge.py",
        "tests/core/test_routing.py",
        "tests/core/test_traffic.py",
        "tests/core/test_validation.py",
        "tests/core/test_worker.py",
        "tests/core/test_worker_outcomes.py",
        "tests/backends/kubernetes/golden/test_objects.py",
        "tests/backends/local/test_edge_forward.py",
        "tests/containment/test_seccomp_profile.py",
        "tests/store/test_sealing.py",
        "tests/images/test_egress.py",
        "tests/images/test_reference.py",
        "tests/runtimes/deno/test_deno_config.py",
        "tests/runtimes/python/test_load_errors.py",
        "tests/runtimes/rust/test_cargo_manifest.py",
        "tests/cli/test_appinfo.py",
        "tests/cli/test_config.py",
        "tests/cli/test_endpoint.py",
        "tests/cli/test_errors.py",
        "tests/cli/test_help.py",
        "tests/cli/test_ids.py",
        "tests/cli/test_output.py",
        "tests/cli/test_packing.py",
        "tests/cli/test_payload.py",
        "tests/cli/test_rollout_spec.py",
        "tests/gateway/test_api.py",
        "tests/gateway/test_app_urls.py",
        "tests/gateway/test_body_gate.py",
        "tests/gateway/test_json_body.py",
        "tests/gateway/test_route_table.py",
        "tests/gateway/test_routes.py",
        "tests/gateway/test_streaming.py",
        "tests/gateway/test_tag_urls.py",
        "tests/gateway/mcp/test_naming.py",
        "tests/gateway/mcp/test_origins.py",
        "tests/gateway/mcp/test_protocol.py",
        "tests/gateway/mcp/test_sessions.py",
        "tests/gateway/mcp/test_tools.py",
    }
)
#: Fixtures that start PostgreSQL, a platform, pods or builds: a test that
#: uses one is never in the fast tier, whatever module it is in.
SLOW_FIXTURES = frozenset(
    {
        "platform", "stub", "secured_platform", "access_token", "ignite",
        "invoker", "build", "database", "pool", "auth_platform",
    }
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the fast tier (``-m fast``)."""
    for item in items:
        module = item.path.relative_to(ROOT).as_posix()
        if module in FAST_MODULES and not SLOW_FIXTURES.intersection(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.fast)


@pytest.fixture(scope="session", autouse=True)
def fast_tier_starts_nothing_heavy(request: pytest.FixtureRequest) -> Iterator[None]:
    """In the fast tier, starting a platform, an embedded PostgreSQL or a
    local pod fails the test that tries: the tier's promise, kept."""
    if request.config.option.markexpr != "fast":
        yield
        return
    from ignite_server.backends.local.backend import LocalBackend
    from ignite_server.store.embedded import EmbeddedPostgres

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fast tier starts no platform, database or pod")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalPlatform, "start", refuse)
        patch.setattr(EmbeddedPostgres, "start", refuse)
        patch.setattr(LocalBackend, "start", refuse)
        yield


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
    args = ("--egress-allow", allowed_services(user_registry))
    if user_registry:
        args += ("--insecure-registries", user_registry)
    with LocalPlatform(state, gateway_port=gateway_port, server_args=args) as running:
        yield running


@pytest.fixture(scope="session")
def build_space(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildSpace]:
    """Where the session's pipeline tests build, as a server's builds do:
    its own block of uids and organizations' build volumes."""
    with BuildSpace.reserved(tmp_path_factory.mktemp("build-state")) as space:
        yield space


@pytest.fixture(scope="session")
def auth_platform() -> Iterator[LocalPlatform]:
    """The platform with authentication required, as a production server
    runs, one per test worker: shared by the tests of identity, the OAuth,
    MCP and anonymous edges, the CLI's accounts and the console, each in
    organizations of its own (the gateway's seed test alone uses the
    seed's fixed names). Tests that need a platform to themselves start
    one: fresh counters (observability), other flags (OIDC, tracing), a
    database they freeze (the token matrix)."""
    state = private_state_dir("ignite-auth-")
    # The console's charts read the server's metrics every second.
    gateway_args = ("--console-scrape-interval", "1")
    with LocalPlatform(state, auth=True, gateway_args=gateway_args) as running:
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
