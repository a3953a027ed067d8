"""`ignite-server` as an operator starts it."""

from __future__ import annotations

import socket
import subprocess
import sys

import grpc
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher import LocalPlatform, private_state_dir
from tests.support import SEED_HANDLER, deploy_python, expect_error, invoke, stub_for


def test_production_without_a_sandbox_refuses_to_start() -> None:
    state = private_state_dir("ignite-production-")
    done = subprocess.run(
        [
            sys.executable, "-m", "ignite_server",
            "--production", "--sandbox", "off", "--insecure",
            "--state-dir", str(state), "--listen", "localhost:0",
            "--metrics-listen", "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ignite-server: a production server needs the pod sandbox"), last
    assert "Traceback" not in done.stderr
    # Nothing was left running: the embedded PostgreSQL stopped with it.
    postmaster = state / "postgres" / "data" / "postmaster.pid"
    assert not postmaster.exists()


def test_a_registry_that_cannot_start_leaves_the_platform_serving_without_images() -> None:
    state = private_state_dir("ignite-no-registry-")
    with socket.socket() as taken:
        # The embedded registry's kept port is held by someone else.
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        (state / "registry.port").write_text(f"{taken.getsockname()[1]}\n")
        with LocalPlatform(state, gateway_port=None) as platform:
            assert platform.registry == ""
            stub = stub_for(platform.grpc_target)
            deploy_python(stub, "acme-corp", "greet", SEED_HANDLER)
            assert invoke(stub, "acme-corp", "greet", b'{"name": "Ada"}')[0] == 200
            stub.CreateApp(compute.CreateAppRequest(organization_name="acme-corp", name="img"))
            stub.SaveDraft(
                compute.SaveDraftRequest(
                    organization_name="acme-corp",
                    app_name="img",
                    code=compute.CodeSource(
                        image=compute.ImageSource(prebuilt={"image_ref": "127.0.0.1:9/a/b:1"})
                    ),
                )
            )
            code, reason = expect_error(
                stub.PublishDraft,
                compute.PublishDraftRequest(organization_name="acme-corp", app_name="img"),
            )
            assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "IMAGE_MODE_UNSUPPORTED")
