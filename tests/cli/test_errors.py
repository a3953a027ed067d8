"""Turning gRPC failures into one line and an exit code."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from dodil_cli.errors import api_error_from_rpc, exit_code_for


class FakeRpcError(grpc.RpcError):
    """What a failed grpc call raises: code, details and trailing metadata."""

    def __init__(self, code, details, trailers=()):
        self._code, self._details, self._trailers = code, details, trailers

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailers


def _packed(*details) -> list[any_pb2.Any]:
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return packed


def _rich(code, message, *details) -> FakeRpcError:
    status = status_pb2.Status(code=code.value[0], message=message, details=_packed(*details))
    return FakeRpcError(code, message, (("grpc-status-details-bin", status.SerializeToString()),))


def test_headline_has_status_reason_and_message():
    info = error_details_pb2.ErrorInfo(
        reason="APP_NOT_FOUND", domain="ignite.dodil.io", metadata={"app": "acme/greet"}
    )
    error = api_error_from_rpc(_rich(grpc.StatusCode.NOT_FOUND, "app acme/greet not found", info))
    assert error.headline() == "NOT_FOUND (APP_NOT_FOUND): app acme/greet not found"
    assert error.exit_code == 3
    assert "domain: ignite.dodil.io" in error.details
    assert "metadata: app=acme/greet" in error.details


def test_reason_equal_to_the_status_is_not_repeated():
    info = error_details_pb2.ErrorInfo(reason="INVALID_ARGUMENT", domain="ignite.dodil.io")
    error = api_error_from_rpc(_rich(grpc.StatusCode.INVALID_ARGUMENT, "bad name", info))
    assert error.headline() == "INVALID_ARGUMENT: bad name"
    assert error.exit_code == 2


def test_other_details_become_verbose_lines():
    violations = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="name", description="not a DNS label")
        ]
    )
    error = api_error_from_rpc(_rich(grpc.StatusCode.INVALID_ARGUMENT, "bad", violations))
    assert "field name: not a DNS label" in error.details


def test_plain_status_without_details():
    error = api_error_from_rpc(FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "no"))
    assert error.headline() == "PERMISSION_DENIED: no"
    assert error.exit_code == 7


def test_unreachable_server_names_the_endpoint():
    error = api_error_from_rpc(
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"),
        endpoint="localhost:1",
    )
    assert error.headline() == "UNAVAILABLE: cannot reach the Ignite API at localhost:1"
    assert error.exit_code == 9
    assert any("failed to connect" in line for line in error.details)


def test_unavailable_from_the_server_keeps_its_message():
    error = api_error_from_rpc(
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "app is starting"), endpoint="localhost:1"
    )
    assert error.headline() == "UNAVAILABLE: app is starting"


def test_garbled_status_trailer_keeps_the_status():
    rpc = FakeRpcError(
        grpc.StatusCode.ABORTED, "lost a race", (("grpc-status-details-bin", b"\xff\x00"),)
    )
    assert api_error_from_rpc(rpc).headline() == "ABORTED: lost a race"


def test_every_status_has_a_distinct_documented_exit_code():
    assert exit_code_for(grpc.StatusCode.UNKNOWN) == 1
    assert exit_code_for(grpc.StatusCode.INTERNAL) == 1
    codes = {
        exit_code_for(c)
        for c in (
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.ALREADY_EXISTS,
            grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.CANCELLED,
        )
    }
    assert codes == {3, 4, 5, 6, 7, 8, 9, 10, 11}
    assert grpc.StatusCode.NOT_FOUND.value[0] == code_pb2.NOT_FOUND


def _too_large(size: int, limit: int) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(
        reason="MESSAGE_TOO_LARGE",
        domain="ignite.dodil.io",
        metadata={"size_bytes": str(size), "limit_bytes": str(limit)},
    )


def test_message_too_large_from_the_server_names_the_limit():
    mib = 1024 * 1024
    message = "the request is 41943059 bytes (40.0 MiB); a message may be at most ..."
    error = api_error_from_rpc(
        _rich(grpc.StatusCode.RESOURCE_EXHAUSTED, message, _too_large(40 * mib + 19, 34 * mib))
    )
    assert error.headline() == (
        "RESOURCE_EXHAUSTED (MESSAGE_TOO_LARGE): "
        "the request is 40 MiB; the server accepts messages up to 34 MiB"
    )
    assert error.exit_code == 8


def test_raw_grpc_size_errors_become_one_line_with_the_limit():
    # grpc core's own texts: the server's core refusing a request, this
    # process refusing a reply ("Received"), or refusing to send ("Sent").
    for text in (
        "Received message larger than max (146800640 vs. 142606336)",
        "grpc: Received message larger than max (146800640 vs. 142606336)",
        "Sent message larger than max (146800640 vs. 142606336)",
    ):
        error = api_error_from_rpc(FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, text))
        assert error.headline() == (
            "RESOURCE_EXHAUSTED (MESSAGE_TOO_LARGE): "
            "a message of 140 MiB is over the limit of 136 MiB"
        ), text
        assert error.exit_code == 8
        assert f"grpc: {text}" in error.details


def test_other_resource_exhausted_errors_are_untouched():
    info = error_details_pb2.ErrorInfo(reason="QUEUE_FULL", domain="ignite.dodil.io")
    error = api_error_from_rpc(
        _rich(grpc.StatusCode.RESOURCE_EXHAUSTED, "the app's queue is full", info)
    )
    assert error.headline() == "RESOURCE_EXHAUSTED (QUEUE_FULL): the app's queue is full"
    plain = api_error_from_rpc(FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota"))
    assert plain.headline() == "RESOURCE_EXHAUSTED: quota"
