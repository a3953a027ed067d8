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


def test_without_a_threshold_pods_fill_to_their_own_concurrency() -> None:
    scaler = Autoscaler(_scaling(), capacity=8)
    assert scaler.desired(0, Load(in_flight=8, waiting=0)) == 1
    assert scaler.desired(0, Load(in_flight=8, waiting=1)) == 2
    # A threshold above the pod's concurrency cannot overfill a pod.
    capped = Autoscaler(_scaling(scale_threshold=50), capacity=8)
    assert capped.desired(0, Load(in_flight=16, waiting=0)) == 2


def test_no_traffic_and_no_reservation_is_zero_pods() -> None:
    scaler = Autoscaler(_scaling(), capacity=4)
    assert scaler.observe(0, Load(in_flight=0, waiting=0)) == 0


def test_a_spike_within_the_period_keeps_the_peak_then_it_ages_out() -> None:
    scaler = Autoscaler(_scaling(scaledown_period_secs=10), capacity=1)
    assert scaler.observe(0, Load(in_flight=1, waiting=0)) == 1
    assert scaler.observe(5, Load(in_flight=4, waiting=0)) == 4
    assert scaler.observe(9, Load(in_flight=1, waiting=0)) == 4
    assert scaler.observe(14, Load(in_flight=1, waiting=0)) == 4  # the spike is 9 s old
    assert scaler.observe(15.6, Load(in_flight=1, waiting=0)) == 1


def test_the_default_rate_threshold_is_used_when_none_is_set() -> None:
    scaler = Autoscaler(_scaling(scale_metric=ScaleMetric.REQUEST_RATE), capacity=100)
    for i in range(RATE_WINDOW_SECS * 150):  # 150 req/s
        scaler.request_started(i / 150)
    now = RATE_WINDOW_SECS - 0.01
    assert scaler.desired(now, Load(in_flight=0, waiting=0)) == 2  # 100/s per pod


def test_old_request_starts_leave_the_rate_window() -> None:
    scaler = Autoscaler(_scaling(scale_metric=ScaleMetric.REQUEST_RATE, scale_threshold=1), 100)
    for i in range(30):
        scaler.request_started(i / 10)  # 3 s of 10 req/s
    assert scaler.rate(3) == 30 / RATE_WINDOW_SECS
    assert scaler.rate(3 + RATE_WINDOW_SECS + 1) == 0
    assert scaler.observe(100, Load(in_flight=0, waiting=0)) == 0


def test_max_replicas_never_goes_below_one_even_when_set_to_zero() -> None:
    scaler = Autoscaler(_scaling(max_replicas=0), capacity=1)
    assert scaler.observe(0, Load(in_flight=10, waiting=0)) == 1
