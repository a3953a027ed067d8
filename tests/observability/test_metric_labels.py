"""Series of apps carry their organization, and a deleted app's series
leave the scrape at once (not at the next restart)."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest

from ignite_server.observability import metrics


def _scrape() -> str:
    return generate_latest(REGISTRY).decode()


def test_app_series_carry_the_organization_and_go_with_the_app() -> None:
    for app in ("acme-labels/web", "other-labels/web"):
        metrics.record_invocation(app, 1, "ok", 0.01, cold_start_s=0.005)
        metrics.count(metrics.POD_STARTS, app, "failed")
    text = _scrape()
    assert (
        'ignite_invocations_total{app="acme-labels/web",organization="acme-labels",'
        'outcome="ok",path="grpc",version="1"} 1.0' in text
    )
    assert 'ignite_pod_starts_total{app="other-labels/web",organization="other-labels",' in text

    metrics.forget_app("acme-labels/web")
    text = _scrape()
    assert 'app="acme-labels/web"' not in text
    # The other organization's app of the same name keeps its series.
    assert 'app="other-labels/web"' in text
    # Recording again after a delete (an app created anew) works.
    metrics.record_invocation("acme-labels/web", 1, "ok", 0.01)
    assert 'app="acme-labels/web"' in _scrape()
