"""The scaling decision alone, with a hand-driven clock."""

from __future__ import annotations

from ignite_server.core.autoscaler import RATE_WINDOW_SECS, Autoscaler, Load
from ignite_server.domain.models import ScaleMetric, Scaling


def _scaling(**over: int | ScaleMetric) -> Scaling:
    values: dict[str, int | ScaleMetric] = {
        "max_replicas": 5,
        "reserved_capacity": 0,
        "scale_threshold": 0,
        "scale_metric": ScaleMetric.CONCURRENCY,
        "scaledown_period_secs": 10,
    }
    values.update(over)
    return Scaling(**values)  # type: ignore[arg-type]


def test_concurrency_fills_pods_to_the_threshold_and_caps_at_max_replicas() -> None:
    scaler = Autoscaler(_scaling(scale_threshold=2), capacity=4)
    assert scaler.observe(0, Load(in_flight=3, waiting=0)) == 2
    assert scaler.observe(1, Load(in_flight=4, waiting=50)) == 5


def test_scale_down_waits_for_the_whole_period_then_reaches_zero() -> None:
    scaler = Autoscaler(_scaling(), capacity=1)
    assert scaler.observe(0, Load(in_flight=3, waiting=0)) == 3
    assert scaler.observe(9, Load(in_flight=0, waiting=0)) == 3
    assert scaler.observe(10.5, Load(in_flight=0, waiting=0)) == 0


def test_reserved_capacity_is_a_floor() -> None:
    scaler = Autoscaler(_scaling(reserved_capacity=2), capacity=1)
    assert scaler.observe(100, Load(in_flight=0, waiting=0)) == 2


def test_request_rate_counts_starts_per_second_over_the_window() -> None:
    scaler = Autoscaler(_scaling(scale_metric=ScaleMetric.REQUEST_RATE, scale_threshold=10), 100)
    for i in range(RATE_WINDOW_SECS * 25):  # 25 req/s
        scaler.request_started(i / 25)
    now = RATE_WINDOW_SECS - 0.01
    assert 20 <= scaler.rate(now) <= 25
    assert scaler.desired(now, Load(in_flight=1, waiting=0)) == 3
    # A slow handler at a low rate still gets the pods its requests need.
    slow = Autoscaler(_scaling(scale_metric=ScaleMetric.REQUEST_RATE, scale_threshold=10), 1)
    assert slow.desired(0, Load(in_flight=4, waiting=0)) == 4
