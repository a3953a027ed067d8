"""What dodil puts on the wire: the bearer token, and how it reads a rich
error status. A small in-test ComputeService records what arrives, since the
platform does not check tokens yet."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import pytest
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2


class RecordingService(compute_grpc.ComputeServiceServicer):
    """Answers GetApp, fails DeleteApp with a rich status, records metadata."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def GetApp(self, request, context):
        self.metadata.append(dict(context.invocation_metadata()))
        app = common.AppMeta(id=f"{request.organization_name}/{request.app_name}", active_version=2)
        return compute.GetAppResponse(app=app)

    def DeleteApp(self, request, context):
        info = error_details_pb2.ErrorInfo(
            reason="APP_BUSY", domain="ignite.dodil.io", metadata={"app": request.app_name}
        )
        detail = any_pb2.Any()
        detail.Pack(info)
        status = status_pb2.Status(
            code=code_pb2.FAILED_PRECONDITION, message="app is compiling", details=[detail]
        )
        context.abort_with_status(_RichStatus(status))


class _RichStatus(grpc.Status):
    def __init__(self, status: status_pb2.Status) -> None:
        self.code = grpc.StatusCode.FAILED_PRECONDITION
        self.details = status.message
        self.trailing_metadata = (("grpc-status-details-bin", status.SerializeToString()),)


@pytest.fixture
def fake_server() -> Iterator[tuple[str, RecordingService]]:
    service = RecordingService()
    with serving(service) as endpoint:
        yield endpoint, service


def test_stored_token_is_sent_as_bearer(dodil, fake_server):
    target, service = fake_server
    dodil("login", "--token", "stored-token", "--endpoint", target).ok()
    dodil("ignite", "app", "get", "acme:greet", "--endpoint", target).ok()
    assert service.metadata[-1]["authorization"] == "Bearer stored-token"

    dodil.env["DODIL_TOKEN"] = "env-token"
    dodil("ignite", "app", "get", "acme:greet", "--endpoint", target).ok()
    assert service.metadata[-1]["authorization"] == "Bearer env-token"


def test_no_token_no_header(dodil, fake_server):
    target, service = fake_server
    dodil("ignite", "app", "get", "acme:greet", "--endpoint", target).ok()
    assert "authorization" not in service.metadata[-1]
    assert service.metadata[-1]["user-agent"].startswith("dodil-cli/")


def test_rich_status_becomes_one_line_and_details_with_verbose(dodil, fake_server):
    target, _ = fake_server
    result = dodil("ignite", "app", "delete", "acme:greet", "--yes", "--endpoint", target)
    assert result.code == 5
    assert result.error_line() == "error: FAILED_PRECONDITION (APP_BUSY): app is compiling"
    verbose = dodil("ignite", "app", "delete", "acme:greet", "--yes", "--endpoint", target, "-v")
    assert "domain: ignite.dodil.io" in verbose.stderr
    assert "metadata: app=greet" in verbose.stderr


class DeployRecorder(compute_grpc.ComputeServiceServicer):
    """Just enough of the API for `app deploy` to run; records the call order."""

    def __init__(self, compile_fails: bool = False) -> None:
        self.calls: list[str] = []
        self.runtime = common.Runtime()
        self.compile_fails = compile_fails

    def GetApp(self, request, context):
        self.calls.append("GetApp")
        context.abort(grpc.StatusCode.NOT_FOUND, "no such app")

    def CreateApp(self, request, context):
        self.calls.append("CreateApp")
        self.runtime = request.runtime
        return compute.CreateAppResponse(app=common.AppMeta(runtime=request.runtime))

    def SaveDraft(self, request, context):
        self.calls.append("SaveDraft")
        return compute.SaveDraftResponse(draft=compute.AppVersionInfo(version=0))

    def CompileDraft(self, request, context):
        self.calls.append("CompileDraft")
        if self.compile_fails:
            draft = compute.AppVersionInfo(status=common.VERSION_STATUS_FAILED, error="E0425")
            return compute.CompileDraftResponse(draft=draft, build_log="error[E0425]: not found")
        draft = compute.AppVersionInfo(version=0, status=common.VERSION_STATUS_DRAFT)
        return compute.CompileDraftResponse(draft=draft, build_log="ok")

    def PublishDraft(self, request, context):
        self.calls.append("PublishDraft")
        app = common.AppMeta(active_version=1)
        return compute.PublishDraftResponse(published_version=1, app=app)


@contextmanager
def serving(service: compute_grpc.ComputeServiceServicer) -> Iterator[str]:
    """Serve ``service`` on a free loopback port; yields the endpoint."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    compute_grpc.add_ComputeServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


@pytest.mark.parametrize("runtime", ["rust", "go", "python", "deno"])
def test_deploy_builds_before_it_publishes(dodil, runtime):
    """Every runtime's draft is built (CompileDraft) before PublishDraft, so
    a draft that fails fails as a build, on a first deploy as on any other."""
    service = DeployRecorder()
    (dodil.cwd / "main.src").write_text("code")
    with serving(service) as endpoint:
        dodil("ignite", "app", "deploy", "acme:x", "-c", "main.src", "--runtime", runtime,
              "--endpoint", endpoint).ok()  # fmt: skip
    assert service.calls == ["GetApp", "CreateApp", "SaveDraft", "CompileDraft", "PublishDraft"]
    assert service.runtime.WhichOneof("runtime") == runtime


def test_failed_compile_stops_the_deploy(dodil):
    service = DeployRecorder(compile_fails=True)
    (dodil.cwd / "lib.rs").write_text("fn handler() {}")
    with serving(service) as endpoint:
        args = ["ignite", "app", "deploy", "acme:x", "-c", "lib.rs", "--runtime", "rust"]
        result = dodil(*args, "--endpoint", endpoint)
        verbose = dodil(*args, "--endpoint", endpoint, "--verbose")
    assert result.code == 12
    assert result.error_line() == "error: compile of acme:x failed: E0425"
    assert "error[E0425]: not found" in verbose.stderr
    assert "PublishDraft" not in service.calls
