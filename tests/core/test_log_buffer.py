"""The log buffer divides itself per app: a flooding app loses its own lines
(and its log says how many), never a quiet app's; batches are taken
round-robin; an organization past its daily quota stores nothing more."""

from __future__ import annotations

import time

from ignite_server.core.log_buffer import LogBuffer, line_bytes
from ignite_server.domain.models import LogEntry, LogStream


def _line(org: str, app: str, message: str) -> LogEntry:
    return LogEntry(
        timestamp_ms=int(time.time() * 1000),
        organization=org,
        app=app,
        version=1,
        execution_id="",
        stream=LogStream.STDOUT,
        message=message,
    )


def _drain(buffer: LogBuffer) -> list[LogEntry]:
    out: list[LogEntry] = []
    while batch := buffer.take(2000):
        out += batch
    return out


def test_a_flood_is_cut_at_its_apps_rate_and_the_quiet_app_keeps_every_line():
    buffer = LogBuffer(max_log_bytes_per_day=1 << 40, lines_per_sec=100, burst=1000)
    for n in range(50_000):
        buffer.add(_line("a", "loud", f"flood {n}"))
        if n % 800 == 0 and n // 800 < 60:
            buffer.add(_line("b", "quiet", f"b-line-{n // 800:02d}"))
    written = _drain(buffer)
    quiet = [e.message for e in written if e.app == "quiet"]
    loud = [e for e in written if e.app == "loud" and e.stream == LogStream.STDOUT]
    notice = [e.message for e in written if e.stream == LogStream.PLATFORM]
    print(f"\nloud kept {len(loud)} of 50000; quiet kept {len(quiet)} of 60; {notice}")
    assert quiet == [f"b-line-{i:02d}" for i in range(60)]
    assert 1000 <= len(loud) < 1100
    assert len(notice) == 1 and notice[0].startswith(f"{50_000 - len(loud)} lines dropped")
    # The notice is in the flooding app's own log.
    assert [e.app for e in written if e.stream == LogStream.PLATFORM] == ["loud"]


def test_a_full_buffer_drops_the_biggest_apps_oldest_lines():
    buffer = LogBuffer(
        max_log_bytes_per_day=1 << 40, app_max_buffered=80, max_buffered=100, burst=10_000
    )
    for n in range(200):
        buffer.add(_line("a", "loud", f"a{n}"))
    for n in range(20):
        buffer.add(_line("b", "quiet", f"b{n}"))
    assert len(buffer) == 100
    written = _drain(buffer)
    assert [e.message for e in written if e.app == "quiet"] == [f"b{n}" for n in range(20)]
    # loud kept its newest lines: its own cap, then the global one.
    loud = [e.message for e in written if e.app == "loud" and e.stream == LogStream.STDOUT]
    assert loud == [f"a{n}" for n in range(120, 200)][-len(loud) :]
    assert any("lines dropped" in e.message for e in written if e.app == "loud")


def test_batches_go_round_robin_across_apps():
    buffer = LogBuffer(max_log_bytes_per_day=1 << 40, burst=10_000)
    for n in range(5000):
        buffer.add(_line("a", "loud", f"a{n}"))
    for n in range(5):
        buffer.add(_line("b", "quiet", f"b{n}"))
    first = buffer.take(100)
    assert [e.message for e in first if e.app == "quiet"] == [f"b{n}" for n in range(5)]
    assert len(first) == 100


def test_an_organization_past_its_daily_quota_stores_no_more_lines():
    quota = 10 * line_bytes("x" * 1000)
    buffer = LogBuffer(max_log_bytes_per_day=quota, burst=10_000)
    for _ in range(50):
        buffer.add(_line("a", "app", "x" * 1000))
        buffer.add(_line("b", "app", "short"))
    written = _drain(buffer)
    a_lines = [e for e in written if e.organization == "a" and e.stream == LogStream.STDOUT]
    b_lines = [e for e in written if e.organization == "b" and e.stream == LogStream.STDOUT]
    assert len(a_lines) == 10 and len(b_lines) == 50
    notice = [e.message for e in written if e.organization == "a" and "dropped" in e.message]
    assert notice and "log quota" in notice[0]
    # The store's count (every server's lines) decides from then on.
    usage = buffer.unreported_usage()
    day = next(iter(usage))[1]
    buffer.stored_usage({("b", day): quota})
    buffer.add(_line("b", "app", "past the quota now"))
    assert not [e for e in _drain(buffer) if e.stream == LogStream.STDOUT]


def test_a_reader_learns_an_app_is_past_its_rate_and_drops_unread():
    buffer = LogBuffer(max_log_bytes_per_day=1 << 40, lines_per_sec=10, burst=100)
    assert buffer.admits("a", "loud") and buffer.admits("b", "quiet")
    for n in range(100):
        buffer.add(_line("a", "loud", f"a{n}"))
    assert not buffer.admits("a", "loud")
    assert buffer.admits("b", "quiet")
    buffer.drop("a", "loud", 5000)
    written = _drain(buffer)
    assert [e.message for e in written if e.stream == LogStream.PLATFORM] == [
        "5000 lines dropped (5000 because the app printed more than 10 lines per second)"
    ]
    time.sleep(0.15)  # a line's worth of rate comes back
    assert buffer.admits("a", "loud")
