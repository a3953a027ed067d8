"""What the platform sends, and where it connects, on a user's behalf:

- a registry or git secret goes only to the hosts it was created for: a
  deploy naming it with another host is refused before anything is sent
  (a listener there records nothing), and another organization cannot
  name it at all;
- ``--image`` and ``--git-url`` naming loopback, link-local or private
  addresses are refused (the same way whether something listens there or
  not), unless the operator's allow-list names them; and an allowed peer
  that answers with something else than a registry or git is never quoted
  in the error (the report's ``malformed HTTP response "\\x00\\x00\\x18\\x04…"``
  was the gRPC server's SETTINGS frame)."""

from __future__ import annotations

import base64
import socket
import uuid

import grpc
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher import temporary_platform
from tests.support import SINK_PORTS, Sink, error_info, stub_for, unique_name

#: What a gRPC server answers first: an HTTP/2 SETTINGS frame.
HTTP2_SETTINGS = bytes.fromhex("000018040000000000000100001000000300000064000400100000000600002000")


def _image(ref: str, secret: str = "") -> compute.CodeSource:
    return compute.CodeSource(
        image=compute.ImageSource(prebuilt={"image_ref": ref, "registry_secret_ref": secret})
    )


def _git(url: str, secret: str = "") -> compute.CodeSource:
    return compute.CodeSource(
        image=compute.ImageSource(
            from_git={"repo_url": url, "ref": "main", "git_secret_ref": secret}
        )
    )


def _publish(stub, org: str, app: str, code: compute.CodeSource) -> tuple[str, str, str]:
    """Save ``code`` as the app's draft and publish it, which must fail:
    (status code name, reason, message)."""
    try:
        stub.CreateApp(compute.CreateAppRequest(organization_name=org, name=app))
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    stub.SaveDraft(compute.SaveDraftRequest(organization_name=org, app_name=app, code=code))
    try:
        stub.PublishDraft(
            compute.PublishDraftRequest(organization_name=org, app_name=app), timeout=120
        )
    except grpc.RpcError as err:
        info = error_info(err)
        return err.code().name, info.reason if info else "", err.details() or ""
    raise AssertionError(f"{code} was published")


def test_a_secret_is_sent_only_to_the_hosts_it_is_for(stub, org: str) -> None:
    password = f"canary-secret-{uuid.uuid4().hex}"
    basic = base64.b64encode(f"robot:{password}".encode())
    with Sink(port=SINK_PORTS[0]) as foreign, Sink(port=SINK_PORTS[1]) as bound:
        stub.CreateSecret(
            compute.CreateSecretRequest(
                organization_name=org, name="reg", username="robot", password=password,
                hosts=["registry.example.com"],
            )
        )  # fmt: skip
        for app, code in (
            ("img", _image(f"{foreign.address}/team/app:1", "reg")),
            ("repo", _git(f"http://{foreign.address}/team/app.git", "reg")),
        ):
            status, reason, message = _publish(stub, org, app, code)
            assert (status, reason) == ("FAILED_PRECONDITION", "SECRET_HOST_MISMATCH"), message
            assert foreign.address in message and "registry.example.com" in message
            assert password not in message
        # Nothing at all reached the foreign host, credentials or otherwise.
        assert (foreign.connections, foreign.received) == (0, [])

        # Another organization cannot name the secret at all.
        other = unique_name("org")
        status, reason, _ = _publish(
            stub, other, "img", _image(f"{foreign.address}/team/app:1", "reg")
        )
        assert (status, reason) == ("FAILED_PRECONDITION", "SECRET_NOT_FOUND")
        assert foreign.connections == 0

        # Bound to a host, the same deploy does send them there: the binding
        # is what held them back above.
        stub.CreateSecret(
            compute.CreateSecretRequest(
                organization_name=org, name="reg", username="robot", password=password,
                hosts=[bound.address], replace=True,
            )
        )  # fmt: skip
        status, reason, message = _publish(
            stub, org, "img", _image(f"{bound.address}/team/app:1", "reg")
        )
        assert (status, reason) == ("FAILED_PRECONDITION", "REGISTRY_AUTH_FAILED"), message
        status, reason, message = _publish(
            stub, org, "repo", _git(f"http://{bound.address}/team/app.git", "reg")
        )
        assert (status, reason) == ("FAILED_PRECONDITION", "BUILD_FAILED"), message
        sent = b"".join(bound.received)
        assert sent.count(b"Authorization: Basic " + basic) >= 2, sent[:500]
        assert (foreign.connections, foreign.received) == (0, [])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_loopback_and_private_destinations_are_refused_without_an_oracle_or_peer_bytes() -> None:
    with (
        Sink(answer=HTTP2_SETTINGS) as grpc_like,
        temporary_platform(
            gateway_port=None, server_args=("--egress-allow", grpc_like.address)
        ) as platform,
    ):
        stub = stub_for(platform.grpc_target)
        org = unique_name("org")
        grpc_port = int(platform.grpc_target.rsplit(":", 1)[1])
        closed = _closed_port()
        refused = [
            _image(f"127.0.0.1:{grpc_port}/team/app:1"),
            _image(f"localhost:{grpc_port}/team/app:1"),
            _image("169.254.169.254/latest/meta-data:1"),
            _image("10.0.0.1:5000/team/app:1"),
            _image("192.168.0.10/team/app:1"),
            _git(f"git://127.0.0.1:{grpc_port}/team/app.git"),
            _git(f"http://localhost:{grpc_port}/team/app.git"),
            _git("https://169.254.169.254/team/app.git"),
        ]
        for n, code in enumerate(refused):
            status, reason, message = _publish(stub, org, f"ssrf{n}", code)
            assert (status, reason) == ("FAILED_PRECONDITION", "DESTINATION_NOT_ALLOWED"), message
            assert message.isprintable() and "--egress-allow" in message
        # Open or closed, a loopback port reads the same: no port oracle.
        answers = [
            _publish(stub, org, "oracle", _image(f"127.0.0.1:{port}/team/app:1"))
            for port in (grpc_port, closed)
        ]
        assert answers[0][2].replace(str(grpc_port), "P") == answers[1][2].replace(str(closed), "P")
        assert grpc_like.connections == 0

        # Allowed, but no registry or git server: reached, and never quoted.
        for n, code in enumerate(
            [
                _image(f"{grpc_like.address}/team/app:1"),
                _git(f"http://{grpc_like.address}/team/app.git"),
                _git(f"git://{grpc_like.address}/team/app.git"),
            ]
        ):
            status, _, message = _publish(stub, org, f"peer{n}", code)
            assert status == "FAILED_PRECONDITION", message
            assert message.isprintable(), repr(message)
            for quoted in ("\\x00", "\\x18", "\\u0000", "malformed HTTP response"):
                assert quoted not in message, message
            draft = stub.GetDraft(
                compute.GetDraftRequest(organization_name=org, app_name=f"peer{n}")
            )
            assert all(line.isprintable() for line in draft.build_log.splitlines())
            assert "\\x00" not in draft.build_log
        assert grpc_like.connections >= 3
