"""Rough edges real apps met on the way to deploying, each fixed: the build
cache tells an archive from a single file with the same bytes, an app whose
only build failed says so when invoked, and CreateApp's name errors name
the request's own field, and cancelling a running execution answers with
the state the cancellation leads to."""

from __future__ import annotations

import grpc
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from tests.eventually import eventually
from tests.support import (
    deploy_python,
    error_info,
    publish_error,
    python_archive,
    python_source,
    tar_gz,
)


def _create(stub, org: str, name: str) -> None:
    stub.CreateApp(
        compute.CreateAppRequest(organization_name=org, name=name, runtime={"python": {}})
    )


def test_the_same_bytes_as_an_archive_and_as_a_file_are_built_apart(stub, org):
    data = tar_gz({"handler.py": b"def handler(payload, ctx):\n    return 'packed'\n"})
    _create(stub, org, "packed")
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org, app_name="packed", code=python_archive(data)
        )
    )
    stub.PublishDraft(compute.PublishDraftRequest(organization_name=org, app_name="packed"))

    # The archive's bytes as one source file are not a Python module: that
    # build fails, even though these bytes built fine as an archive.
    _create(stub, org, "unpacked")
    assert publish_error(stub, org, "unpacked", python_source(data)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "BUILD_FAILED",
    )


def test_invoking_an_app_whose_build_failed_points_at_the_build(stub, org):
    _create(stub, org, "broken")
    broken = python_source(b"def handler(payload, ctx):\n    return (\n")
    assert publish_error(stub, org, "broken", broken)[1] == "BUILD_FAILED"
    request = compute.InvokeRequest(organization_name=org, app_name="broken", body=b"{}")
    try:
        list(stub.Invoke(request))
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        message = err.details()
        assert "failed to build" in message
        assert f"dodil ignite draft get {org}:broken" in message
        assert "publish the draft first" not in message
    else:
        raise AssertionError("an app with no published version answered")


def test_create_app_name_errors_name_the_field_name(stub, org):
    try:
        stub.CreateApp(
            compute.CreateAppRequest(organization_name=org, name="Bad_Name", runtime={"python": {}})
        )
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        info = error_info(err)
        assert info is not None and info.metadata["field"] == "name"
        assert err.details().startswith("name ")
        assert "app_name" not in err.details()
    else:
        raise AssertionError("a bad name was accepted")


SLEEPY = b"""import time

def handler(payload, ctx):
    time.sleep(60)
    return "never"
"""


def test_cancelling_a_running_execution_answers_cancelled(stub, org):
    deploy_python(stub, org, "sleepy", SLEEPY)
    submitted = stub.InvokeAsync(
        compute.InvokeAsyncRequest(organization_name=org, app_name="sleepy", body=b"{}")
    )
    get = compute.GetExecutionRequest(organization_name=org, execution_id=submitted.execution_id)
    eventually(
        lambda: stub.GetExecution(get).execution.status == common.EXECUTION_STATUS_RUNNING,
        within=60,
        every=0.05,
        what="the execution started",
    )
    answer = stub.CancelExecution(
        compute.CancelExecutionRequest(organization_name=org, execution_id=submitted.execution_id)
    ).execution
    # The state the cancellation leads to, not the RUNNING it interrupted.
    assert answer.status == common.EXECUTION_STATUS_CANCELLED
    assert stub.GetExecution(get).execution.status == common.EXECUTION_STATUS_CANCELLED


def test_build_logs_show_paths_relative_to_the_code(stub, org, platform):
    deno = compute.CodeSource(
        compile=compute.CompileSource(
            runtime={"deno": {}}, source_code=b'const n: number = "not a number";\n'
        )
    )
    stub.CreateApp(
        compute.CreateAppRequest(organization_name=org, name="typed", runtime={"deno": {}})
    )
    stub.SaveDraft(compute.SaveDraftRequest(organization_name=org, app_name="typed", code=deno))
    built = stub.CompileDraft(compute.CompileDraftRequest(organization_name=org, app_name="typed"))
    assert built.draft.status == common.VERSION_STATUS_FAILED
    # Deno names the file it checked: as the app's own, not a server path.
    assert "main.ts:1:7" in built.build_log
    for text in (built.build_log, built.draft.error):
        assert str(platform.state_dir) not in text
        assert "/scratch/" not in text and "file:///" not in text
