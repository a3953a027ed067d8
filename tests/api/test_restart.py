"""A server restart, graceful or a crash, keeps every stored thing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher import LocalPlatform, private_state_dir
from tests.support import SEED_HANDLER, invoke, python_source, stub_for, tar_gz


def _state(stub) -> tuple:
    app = stub.GetApp(compute.GetAppRequest(organization_name="acme-corp", app_name="greet")).app
    versions = stub.ListVersions(
        compute.ListVersionsRequest(organization_name="acme-corp", app_name="greet")
    ).versions
    draft = stub.GetDraft(compute.GetDraftRequest(organization_name="acme-corp", app_name="greet"))
    return (
        app.active_version,
        app.description,
        dict(app.env),
        [(v.version, v.status, v.code_hash) for v in versions],
        draft.draft.code_hash,
    )


def test_restart_and_crash_keep_all_data():
    with LocalPlatform(private_state_dir("ignite-restart-"), gateway_port=None) as platform:
        stub = stub_for(platform.grpc_target)
        stub.CreateApp(
            compute.CreateAppRequest(
                organization_name="acme-corp",
                name="greet",
                runtime={"python": {}},
                description="kept",
                env={"GREETING": "hi"},
            )
        )
        for suffix in (b"", b"\n# 2\n"):
            stub.SaveDraft(
                compute.SaveDraftRequest(
                    organization_name="acme-corp",
                    app_name="greet",
                    code=python_source(SEED_HANDLER + suffix),
                )
            )
            stub.PublishDraft(
                compute.PublishDraftRequest(organization_name="acme-corp", app_name="greet")
            )
        stub.SaveDraft(
            compute.SaveDraftRequest(
                organization_name="acme-corp",
                app_name="greet",
                code=python_source(SEED_HANDLER + b"\n# draft\n"),
            )
        )
        before = _state(stub)
        assert before[0] == 2
        assert [s for _, s, _ in before[3]] == [
            common.VERSION_STATUS_ACTIVE,
            common.VERSION_STATUS_SUPERSEDED,
        ]

        platform.restart_server()
        assert _state(stub_for(platform.grpc_target)) == before

        # A crash: the embedded cluster outlives the server and is reused.
        platform.kill_server()
        platform.start_server()
        stub = stub_for(platform.grpc_target)
        assert _state(stub) == before
        # And the platform still works after it.
        published = stub.PublishDraft(
            compute.PublishDraftRequest(organization_name="acme-corp", app_name="greet")
        )
        assert published.published_version == 3


def test_image_apps_run_again_after_a_restart_and_a_crash(tmp_path):
    """The embedded registry keeps its port and its images across server
    restarts (versions name their images by that address)."""
    probe = tmp_path / "server"
    subprocess.run(
        ["go", "build", "-o", str(probe), "main.go"],
        cwd=Path(__file__).parents[1] / "backends" / "local" / "image_app",
        env={**os.environ, "CGO_ENABLED": "0", "GO111MODULE": "off"},
        check=True,
    )
    dockerfile = b'FROM scratch\nCOPY --chmod=755 server /server\nENTRYPOINT ["/server"]\n'
    context = tar_gz({"Dockerfile": dockerfile, "server": probe.read_bytes()})
    with LocalPlatform(private_state_dir("ignite-restart-img-"), gateway_port=None) as platform:
        stub = stub_for(platform.grpc_target)
        stub.CreateApp(compute.CreateAppRequest(organization_name="acme-corp", name="web"))
        stub.SaveDraft(
            compute.SaveDraftRequest(
                organization_name="acme-corp",
                app_name="web",
                code=compute.CodeSource(
                    image=compute.ImageSource(
                        from_code=compute.ImageFromCode(archive=context), health_path="/healthz"
                    )
                ),
            )
        )
        stub.PublishDraft(
            compute.PublishDraftRequest(organization_name="acme-corp", app_name="web"), timeout=600
        )
        assert invoke(stub, "acme-corp", "web", b"one")[0] == 200
        registry = platform.registry

        platform.restart_server()
        assert platform.registry == registry
        stub = stub_for(platform.grpc_target)
        status, body = invoke(stub, "acme-corp", "web", b"two")
        assert (status, json.loads(body)["body"]) == (200, "two")

        # A crash (the registry dies with its server), and the unpacked
        # images lost with it: the pod's image comes from the registry again.
        platform.kill_server()
        shutil.rmtree(platform.state_dir / "images")
        platform.start_server()
        assert platform.registry == registry
        stub = stub_for(platform.grpc_target)
        status, body = invoke(stub, "acme-corp", "web", b"three")
        assert (status, json.loads(body)["body"]) == (200, "three")
