"""A gRPC message over the documented 34 MiB limit is RESOURCE_EXHAUSTED with
the reason MESSAGE_TOO_LARGE and the limit, never INTERNAL, and changes
nothing; past grpc core's hard limit (136 MiB) core itself refuses it, still
RESOURCE_EXHAUSTED (docs/limits.md)."""

from __future__ import annotations

import grpc
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_server.api.grpc_server import CORE_RECEIVE_BYTES
from ignite_server.api.rpc_boundary import MAX_MESSAGE_BYTES
from tests.support import SEED_HANDLER, deploy_python, error_info, python_source

MIB = 1024 * 1024
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def _channel_stub(target: str):
    from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc

    # A raw client that sends whatever it is given: its own limits are far
    # above the server's.
    channel = grpc.insecure_channel(
        target,
        options=[
            ("grpc.max_send_message_length", 512 * MIB),
            ("grpc.max_receive_message_length", 512 * MIB),
        ],
    )
    return compute_grpc.ComputeServiceStub(channel)


def _stored(stub, org: str) -> tuple:
    app = stub.GetApp(compute.GetAppRequest(organization_name=org, app_name="greet")).app
    draft = stub.GetDraft(compute.GetDraftRequest(organization_name=org, app_name="greet")).draft
    return (
        (app.active_version, app.description),
        draft.code_hash,
        sorted(a.name for a in stub.ListApps(compute.ListAppsRequest(organization_name=org)).apps),
        [
            e.id
            for e in stub.ListExecutions(
                compute.ListExecutionsRequest(organization_name=org)
            ).executions
        ],
    )


def _fail(call) -> grpc.RpcError:
    try:
        result = call()
        if hasattr(result, "__iter__") and not isinstance(result, bytes | str):
            list(result)  # a server stream fails on reading
    except grpc.RpcError as err:
        return err
    raise AssertionError("the oversize call succeeded")


def test_a_40_mib_message_is_resource_exhausted_with_the_limit(platform, org):
    stub = _channel_stub(platform.grpc_target)
    deploy_python(stub, org, "greet", SEED_HANDLER, description="kept")
    before = _stored(stub, org)
    body = b"\x01" * (40 * MIB)
    calls = {
        "Invoke": lambda: stub.Invoke(
            compute.InvokeRequest(organization_name=org, app_name="greet", body=body)
        ),
        "InvokeAsync": lambda: stub.InvokeAsync(
            compute.InvokeAsyncRequest(organization_name=org, app_name="greet", body=body)
        ),
        "SaveDraft": lambda: stub.SaveDraft(
            compute.SaveDraftRequest(
                organization_name=org, app_name="greet", code=python_source(body)
            )
        ),
        "CreateApp": lambda: stub.CreateApp(
            compute.CreateAppRequest(
                organization_name=org, name="huge", description="d" * (40 * MIB)
            )
        ),
    }
    for name, call in calls.items():
        err = _fail(call)
        assert err.code() == EXHAUSTED, (name, err)  # type: ignore[attr-defined]
        info = error_info(err)
        assert info is not None, name
        assert info.reason == "MESSAGE_TOO_LARGE"
        assert info.domain == "ignite.dodil.io"
        assert info.metadata["limit_bytes"] == str(MAX_MESSAGE_BYTES)
        assert int(info.metadata["size_bytes"]) > 40 * MIB
        assert "34 MiB" in err.details(), err.details()  # type: ignore[attr-defined]
    assert _stored(stub, org) == before


def test_past_the_hard_limit_grpc_core_refuses_it(platform, org):
    stub = _channel_stub(platform.grpc_target)
    deploy_python(stub, org, "greet", SEED_HANDLER, description="kept")
    before = _stored(stub, org)
    err = _fail(
        lambda: stub.CreateApp(
            compute.CreateAppRequest(
                organization_name=org, name="huge", description="d" * (CORE_RECEIVE_BYTES + 1)
            )
        )
    )
    assert err.code() == EXHAUSTED  # type: ignore[attr-defined]
    assert "larger than max" in err.details()  # type: ignore[attr-defined]
    assert str(CORE_RECEIVE_BYTES) in err.details()  # type: ignore[attr-defined]
    assert _stored(stub, org) == before
    # The server is unharmed.
    stub.GetApp(compute.GetAppRequest(organization_name=org, app_name="greet"))
