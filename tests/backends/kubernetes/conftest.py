"""The Kubernetes suite's fixtures: one real test bed (tools/testbed) for
the session, the runtime images loaded into it, and one platform whose
server runs its pods there (``--backend kubernetes``).

Runs only with IGNITE_KUBERNETES=1 (root; a first run on a new machine
builds Kubernetes and KEDA for ~15 minutes), in one process (``-p no:xdist``
or ``-n 0``): the bed is one per machine. IGNITE_TESTBED_REUSE=1 uses a bed
that is already up (``make testbed-up``) and leaves it running.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher.platform import LocalPlatform
from ignite_launcher.state import private_state_dir
from tests.support import stub_for, unique_name
from tests.testbed.bed import bring_up_testbed, read_env_file

ROOT = Path(__file__).resolve().parents[3]
NAMESPACE = "default"

# The suite needs the machine's one test bed to itself: `make test` runs it
# on its own after the parallel run (`make test-kubernetes`), which sets
# IGNITE_KUBERNETES=1. The parallel run does not collect it at all.
collect_ignore_glob = [] if os.environ.get("IGNITE_KUBERNETES") == "1" else ["test_*.py"]


@pytest.fixture(scope="session")
def bed() -> Iterator[dict[str, str]]:
    """The test bed's env values, with the runtime images loaded."""
    env_file = Path(os.environ.get("TESTBED_DIR", "/tmp/ignite-testbed")) / "testbed.env"
    if os.environ.get("IGNITE_TESTBED_REUSE") == "1" and env_file.exists():
        values = read_env_file(env_file)
        _load_images()
        yield values
        return
    loop = asyncio.new_event_loop()
    manager = bring_up_testbed()
    running = loop.run_until_complete(manager.__aenter__())
    try:
        _load_images()
        yield running.env
    finally:
        loop.run_until_complete(manager.__aexit__(None, None, None))
        loop.close()


def _load_images() -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "images" / "build_runtime_images.py"), "--load"],
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def k8s_platform(bed: dict[str, str]) -> Iterator[LocalPlatform]:
    """A server whose pods run in the bed: artifacts served on the bridge
    address (where pods reach the host), the KEDA scaler on loopback (KEDA
    runs on the host)."""
    state = private_state_dir("ignite-k8s-test-")
    args = (
        "--backend", "kubernetes",
        "--kubeconfig", bed["KUBECONFIG"],
        "--namespace", NAMESPACE,
        "--artifact-listen", f"{bed['TESTBED_HOST_IP']}:0",
        "--keda-scaler-listen", "127.0.0.1:0",
    )  # fmt: skip
    with LocalPlatform(state, gateway_port=None, server_args=args) as running:
        yield running


@pytest.fixture(scope="session")
def k8s_stub(k8s_platform: LocalPlatform) -> Any:
    return stub_for(k8s_platform.grpc_target)


class Kubectl:
    """kubectl against the bed, JSON out."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, "KUBECONFIG": env["KUBECONFIG"], "PATH": env["PATH"]}

    def get(self, kinds: str, selector: str) -> list[dict[str, Any]]:
        out = subprocess.run(
            ["kubectl", "-n", NAMESPACE, "get", kinds, "-l", selector, "-o", "json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        return list(json.loads(out)["items"])


@pytest.fixture(scope="session")
def kubectl(bed: dict[str, str]) -> Kubectl:
    return Kubectl(bed)


@pytest.fixture
def org(k8s_stub: Any) -> Iterator[str]:
    """An organization of the test's own, whose apps are deleted after it:
    a test's pods must not hold the one node's CPU for the next tests."""
    name = unique_name("org")
    yield name
    listed = k8s_stub.ListApps(compute.ListAppsRequest(organization_name=name, page_size=100))
    for app in listed.apps:
        k8s_stub.DeleteApp(compute.DeleteAppRequest(organization_name=name, app_name=app.name))


def assert_hardened(container: dict[str, Any]) -> None:
    """A pod's container runs as the platform's non-root uid, read-only,
    without capabilities or privilege escalation, under RuntimeDefault seccomp."""
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
