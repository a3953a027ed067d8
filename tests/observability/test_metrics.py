"""/metrics of server and gateway after a scripted workload: each named
series with the value the workload leads to, and `promtool check metrics`
(Debian's prometheus package, tools/observability.sh) on both outputs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ignite_launcher import LocalPlatform, temporary_platform
from tests.observability.workload import Api
from tests.support import require_tool, unique_name


@pytest.fixture(scope="module")
def secured() -> Iterator[LocalPlatform]:
    with temporary_platform(auth=True) as platform:
        yield platform


def _scrape(url: str) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def _value(samples: dict, name: str, **labels: str) -> float:
    if "app" in labels:
        # Per-app series carry their organization too (the app id's first part).
        labels.setdefault("organization", labels["app"].partition("/")[0])
    return samples.get((name, frozenset(labels.items())), 0.0)


def _promtool(text: str) -> None:
    promtool = require_tool("promtool", "tools/observability.sh")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


@pytest.mark.timeout(240)
def test_metrics_after_a_workload(secured: LocalPlatform) -> None:
    api = Api.sign_in(secured)
    org, app = unique_name("org"), "echo"
    app_id = f"{org}/{app}"
    api.call("POST", "/v1/ignite/org", {"name": org})
    api.deploy_cold(org, app)  # a build (python, succeeded), version 1 ready, then cold

    status, _ = api.invoke(org, app, {"n": 1})  # cold start
    assert status == 200
    status, _ = api.invoke(org, app, {"n": 2})  # warm
    assert status == 200
    assert api.invoke_app_url(org, app, {"n": 3}) == 200
    status, body = api.invoke(org, app, {"fail": True})  # the handler raises: 500
    assert status == 500, body
    execution_id = api.invoke_async(org, app, {"n": 4})
    assert api.wait_execution(org, execution_id)["status"] == "EXECUTION_STATUS_COMPLETED"
    # A token that does not verify.
    refused = requests.get(
        f"{secured.http_url}/v1/ignite/app/{org}",
        headers={"Authorization": "Bearer not-a-jwt"},
        timeout=30,
    )
    assert refused.status_code == 401

    text, server = _scrape(secured.server_metrics_url)

    def invocations(path: str, outcome: str) -> float:
        return _value(
            server, "ignite_invocations_total", app=app_id, version="1", path=path, outcome=outcome
        )

    assert invocations("http", "ok") == 2
    assert invocations("app_url", "ok") == 1
    assert invocations("http", "handler_error") == 1
    assert invocations("async", "ok") == 1
    assert invocations("grpc", "ok") == 0
    assert _value(server, "ignite_invoke_duration_seconds_count", app=app_id, path="http") == 3
    assert _value(server, "ignite_invoke_overhead_seconds_count", path="async") >= 1
    assert _value(server, "ignite_cold_starts_total", app=app_id) == 1
    assert _value(server, "ignite_cold_start_duration_seconds_count", app=app_id) == 1
    assert _value(server, "ignite_cold_start_duration_seconds_sum", app=app_id) > 0
    # Two activations: the publish made version 1 ready, the cold start.
    assert _value(server, "ignite_activations_total", app=app_id) == 2
    assert _value(server, "ignite_pod_starts_total", app=app_id, outcome="started") >= 1
    assert _value(server, "ignite_pods", app=app_id, state="ready") >= 1
    assert _value(server, "ignite_pods", app=app_id, state="starting") == 0
    assert _value(server, "ignite_activation_queue_depth", app=app_id) == 0
    assert _value(server, "ignite_activation_queue_rejections_total", app=app_id) == 0
    assert _value(server, "ignite_builds_total", runtime="python", outcome="succeeded") == 1
    assert _value(server, "ignite_build_duration_seconds_count", runtime="python") == 1
    assert _value(server, "ignite_executions_submitted_total") == 1
    assert (
        _value(server, "ignite_executions_finished_total", status="COMPLETED", error_class="none")
        == 1
    )
    assert _value(server, "ignite_execution_queue_age_seconds_count") == 1
    assert _value(server, "ignite_execution_retries_total", error_class="user_code") == 0
    assert _value(server, "ignite_token_verification_failures_total", reason="MALFORMED_TOKEN") == 1
    assert _value(server, "ignite_db_pool_connections", state="in_use") >= 0
    assert _value(server, "ignite_db_pool_connections", state="idle") >= 1
    assert _value(server, "ignite_db_pool_max_connections") == 20
    invoke_rpc = "/dodil.ignite.v1.ComputeService/Invoke"
    assert _value(server, "ignite_grpc_server_handled_total", method=invoke_rpc, code="OK") == 4
    assert "execution_id" not in text and execution_id not in text
    _promtool(text)

    text, gateway = _scrape(secured.gateway_metrics_url)
    rpc = "dodil.ignite.v1.ComputeService.Invoke"
    assert _value(gateway, "ignite_gateway_http_requests_total", handler=rpc, method="POST",
                  code="200") == 2  # fmt: skip
    assert _value(gateway, "ignite_gateway_http_requests_total", handler=rpc, method="POST",
                  code="500") == 1  # fmt: skip
    assert _value(gateway, "ignite_gateway_http_requests_total", handler="app_url", method="POST",
                  code="200") == 1  # fmt: skip
    assert _value(gateway, "ignite_gateway_http_request_duration_seconds_count", handler=rpc) == 3
    # The scrape itself goes to the admin listener, not counted here.
    assert _value(gateway, "ignite_gateway_http_requests_in_flight") == 0
    _promtool(text)


def test_metrics_are_not_on_the_public_listener(platform: LocalPlatform) -> None:
    response = requests.get(f"{platform.http_url}/metrics", timeout=30)
    assert response.status_code == 404
