"""One connected trace for an invoke through the gateway, received by an
in-process OTLP collector stand-in: gateway span → server span →
activation (→ pod start) and the pod request, and the pod saw the
``traceparent`` of its request span."""

from __future__ import annotations

import pytest

from ignite_launcher import temporary_platform
from tests.observability.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.observability.workload import Api
from tests.support import unique_name


def _one(spans: list[ReceivedSpan], name: str, trace_id: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name and s.trace_id == trace_id]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


@pytest.mark.timeout(240)
def test_invoke_through_the_gateway_is_one_trace() -> None:
    with OtlpReceiver() as receiver:
        otlp = ("--otlp-endpoint", receiver.endpoint)
        with temporary_platform(auth=True, server_args=otlp, gateway_args=otlp) as platform:
            api = Api.sign_in(platform)
            org, app = unique_name("org"), "echo"
            api.call("POST", "/v1/ignite/org", {"name": org})
            api.deploy_cold(org, app)
            # The caller's own trace: the gateway continues it.
            caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
            caller_parent = "00f067aa0ba902b7"
            status, body = api.invoke(
                org, app, {"n": 1}, traceparent=f"00-{caller_trace}-{caller_parent}-01"
            )
            assert status == 200, body

            def complete(spans: list[ReceivedSpan]) -> bool:
                names = {s.name for s in spans if s.trace_id == caller_trace}
                return {
                    "HTTP POST dodil.ignite.v1.ComputeService.Invoke",
                    "ignite.pod.request",
                    "ignite.activation",
                    "ignite.pod.start",
                } <= names

            spans = receiver.wait_for(complete)
    gateway = _one(spans, "HTTP POST dodil.ignite.v1.ComputeService.Invoke", caller_trace)
    assert gateway.service == "ignite-gateway"
    assert gateway.parent_id == caller_parent
    server = _one(spans, "dodil.ignite.v1.ComputeService/Invoke", caller_trace)
    assert server.service == "ignite-server"
    assert server.parent_id == gateway.span_id
    execution_id = server.attributes["ignite.execution_id"]
    activation = _one(spans, "ignite.activation", caller_trace)
    assert activation.parent_id == server.span_id
    pod_start = _one(spans, "ignite.pod.start", caller_trace)
    assert pod_start.parent_id == activation.span_id
    pod_request = _one(spans, "ignite.pod.request", caller_trace)
    assert pod_request.parent_id == server.span_id
    assert pod_request.attributes["ignite.execution_id"] == execution_id
    assert pod_request.attributes["http.response.status_code"] == 200
    # The pod got the request span's context as its traceparent header.
    assert body["headers"]["traceparent"] == f"00-{caller_trace}-{pod_request.span_id}-01"
    # The build of the deploy was traced too (a trace of its own).
    assert any(s.name == "ignite.build" and s.service == "ignite-server" for s in spans)
