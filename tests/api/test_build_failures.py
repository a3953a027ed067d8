"""A build that fails: publish refuses it, and the builder's output is in
the draft's build log and in the app's logs (stream BUILD)."""

from __future__ import annotations

from typing import Any

import grpc
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from tests.eventually import eventually
from tests.support import publish_error, python_archive, read_logs, tar_gz

MISSING = "ignite-test-no-such-package-4d1f"


def test_failed_build_is_reported_everywhere(stub, org):
    stub.CreateApp(
        compute.CreateAppRequest(organization_name=org, name="broken", runtime={"python": {}})
    )
    code = tar_gz(
        {
            "handler.py": b"def handler(payload, ctx):\n    return 'never'\n",
            "requirements.txt": f"{MISSING}==1.0\n".encode(),
        }
    )
    assert publish_error(stub, org, "broken", python_archive(code)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "BUILD_FAILED",
    )

    draft = stub.GetDraft(compute.GetDraftRequest(organization_name=org, app_name="broken"))
    assert draft.draft.status == common.VERSION_STATUS_FAILED
    assert MISSING in draft.build_log
    assert draft.draft.error
    # Nothing was published.
    app = stub.GetApp(compute.GetAppRequest(organization_name=org, app_name="broken")).app
    assert app.active_version == 0

    def build_logged() -> list[Any] | None:
        build = [
            e
            for e in read_logs(stub, org, app_name="broken")
            if e.stream == compute.LOG_STREAM_BUILD
        ]
        return build if any(MISSING in e.message for e in build) else None

    build = eventually(build_logged, every=0.2, what="the build's log says what is missing")
    assert {e.version for e in build} == {0}
