"""Which execution a pod's output line belongs to (pod_logs.py): by the
marks a runtime writes around each handler call, in the pipe's own order,
whatever the reader's timing."""

from __future__ import annotations

import json
from pathlib import Path

from ignite_server.backends.pod_logs import PodLogDemux
from ignite_server.domain.models import LogStream, Resources
from ignite_server.ports.pod_backend import PodLogRecord, PodSpec


def _mark(execution_id: str, event: str) -> bytes:
    return b"\x1e" + json.dumps({"execution_id": execution_id, "event": event}).encode()


def _demux() -> tuple[PodLogDemux, list[PodLogRecord]]:
    records: list[PodLogRecord] = []
    spec = PodSpec("acme/go", 2, Path("/nonexistent"), {}, Resources(128, 250, 10), 1)
    return PodLogDemux("pod1", records.append, lambda: spec), records


def test_lines_between_marks_are_the_executions_even_when_read_after_it_ended() -> None:
    demux, records = _demux()
    # The platform saw the response (the execution left the pod) before
    # the reader got to the lines: the marks still place them.
    with demux.executing("01A"):
        pass
    demux.emit(_mark("01A", "begin"), LogStream.STDERR)
    demux.emit(b"2026/01/01 handler says hi", LogStream.STDERR)
    demux.emit(_mark("01A", "end"), LogStream.STDERR)
    demux.emit(b"a background goroutine", LogStream.STDERR)
    assert [(r.message, r.execution_id) for r in records] == [
        ("2026/01/01 handler says hi", "01A"),
        ("a background goroutine", ""),
    ]
    assert all(r.stream == LogStream.STDERR and r.app_id == "acme/go" for r in records)


def test_each_pipe_keeps_its_own_marks_and_overlaps_attribute_nothing() -> None:
    demux, records = _demux()
    for pipe in (LogStream.STDOUT, LogStream.STDERR):
        demux.emit(_mark("01A", "begin"), pipe)
    demux.emit(b"out of A", LogStream.STDOUT)
    demux.emit(_mark("01B", "begin"), LogStream.STDERR)
    demux.emit(b"A or B?", LogStream.STDERR)
    demux.emit(_mark("01A", "end"), LogStream.STDERR)
    demux.emit(b"err of B", LogStream.STDERR)
    assert [(r.message, r.execution_id) for r in records] == [
        ("out of A", "01A"),
        ("A or B?", ""),
        ("err of B", "01B"),
    ]


def test_without_marks_the_single_execution_in_flight_gets_the_line() -> None:
    demux, records = _demux()
    with demux.executing("01C"):
        demux.emit(b"image app line", LogStream.STDOUT)
    demux.emit(b"after", LogStream.STDOUT)
    assert [(r.message, r.execution_id) for r in records] == [
        ("image app line", "01C"),
        ("after", ""),
    ]
