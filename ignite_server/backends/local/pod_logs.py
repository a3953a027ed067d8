"""A pod's stdout and stderr, demultiplexed into PodLogRecords.

Both pipes are read line by line. A line that starts with 0x1E (the ASCII
record separator) is a tagged record: JSON written by the runtime for one
print of a handler, naming its execution, its stream and its message. Any
other line (the runtime's own output, a library writing to fd 1 or 2) is
attributed to the pod's only in-flight execution when there is exactly one,
and to none otherwise; the last few such lines are kept to explain a pod
that fails to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterator

from ignite_server.domain.models import LogStream
from ignite_server.ports.pod_backend import LogGate, LogSink, PodLogRecord, PodSpec

#: Pipe reader limit: longer lines are split rather than failing the reader.
MAX_LOG_LINE_BYTES = 256 * 1024
#: Bytes read from a pipe at once.
READ_BYTES = 64 * 1024
#: Lines handled before the reader lets other tasks run: a read that finds
#: data already buffered does not suspend, so without this a pod printing
#: as fast as it can would hold the event loop (and every other app's
#: requests) for as long as its pipe stays full.
LINES_PER_TURN = 128
#: How many untagged output lines are kept to explain a failed start.
START_LOG_TAIL = 20
RECORD_SEPARATOR = 0x1E


class PodLogDemux:
    """Turns one pod's output lines into PodLogRecords for its sink.

    ``spec`` returns what the pod serves at the time of a line (nothing
    before a pre-started pod is specialized)."""

    def __init__(self, pod_id: str, sink: LogSink, spec: Callable[[], PodSpec | None]) -> None:
        self._pod_id = pod_id
        self._sink = sink
        self._spec = spec
        self._executions: list[str] = []
        #: The last untagged lines, for the message of a failed start.
        self.tail: deque[str] = deque(maxlen=START_LOG_TAIL)

    @contextlib.contextmanager
    def executing(self, execution_id: str) -> Iterator[None]:
        """Count ``execution_id`` as in flight on the pod for the block."""
        self._executions.append(execution_id)
        try:
            yield
        finally:
            self._executions.remove(execution_id)

    async def read(self, stream: asyncio.StreamReader, kind: LogStream) -> None:
        """Emit every line of one pipe until its end.

        The pipe is read by the chunk and split into lines here. Every
        LINES_PER_TURN lines the reader lets other tasks run and asks the
        sink, when it is a ``LogGate``, whether the app is printing past its
        rate; while it is, the rest of the chunk is counted as dropped
        without being parsed, so a flood costs the server a split and a
        count per chunk rather than work per line."""
        gate = self._sink if isinstance(self._sink, LogGate) else None
        tail = b""
        while True:
            chunk = await stream.read(READ_BYTES)
            if not chunk:
                if tail:
                    self.emit(tail, kind)
                return
            lines = (tail + chunk if tail else chunk).split(b"\n")
            tail = lines.pop()
            if len(tail) > MAX_LOG_LINE_BYTES:  # a line past the limit is cut here
                lines.append(tail)
                tail = b""
            for start in range(0, len(lines), LINES_PER_TURN):
                spec = self._spec()
                if gate is not None and spec is not None and not gate.admits(spec.app_id):
                    gate.dropped(spec.app_id, len(lines) - start)
                    break
                for raw in lines[start : start + LINES_PER_TURN]:
                    self.emit(raw, kind)
                await asyncio.sleep(0)

    def emit(self, raw: bytes, kind: LogStream) -> None:
        """Send one line, read from the pipe of ``kind``, to the sink."""
        execution_id = ""
        text = raw.decode("utf-8", "replace")
        if raw[:1] == bytes([RECORD_SEPARATOR]):
            try:
                record = json.loads(raw[1:])
                execution_id = str(record.get("execution_id") or "")
                text = str(record.get("message", ""))
                if record.get("stream") == "stderr":
                    kind = LogStream.STDERR
                elif record.get("stream") == "stdout":
                    kind = LogStream.STDOUT
            except (ValueError, AttributeError):
                pass
        else:
            self.tail.append(text)
            if len(self._executions) == 1:
                execution_id = self._executions[0]
        spec = self._spec()
        self._sink(
            PodLogRecord(
                app_id=spec.app_id if spec is not None else "",
                version=spec.version if spec is not None else 0,
                pod_id=self._pod_id,
                stream=kind,
                message=text,
                timestamp_ms=int(time.time() * 1000),
                execution_id=execution_id,
            )
        )
