"""Progress of slow steps, on stderr.

On a terminal a step shows a spinner that is replaced by its outcome; when
stderr is a pipe or a file (CI logs, scripts) each step is one plain line,
because carriage-return animations turn into noise there.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from dodil_cli.output import info, style

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
#: Seconds between spinner frames: fast enough to look alive, slow enough to
#: cost nothing.
_FRAME_SECONDS = 0.1


class Progress:
    """Reports steps on stderr, animated only on a terminal."""

    def __init__(self) -> None:
        self.animated = sys.stderr.isatty()

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        """Show ``text`` while the body runs, then a check mark (or a cross)."""
        if not self.animated:
            info(f"{text}...")
            yield
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._spin, args=(text, stop), daemon=True)
        thread.start()
        ok = False
        try:
            yield
            ok = True
        finally:
            stop.set()
            thread.join()
            mark = style("✓", sys.stderr, fg="green") if ok else style("✗", sys.stderr, fg="red")
            sys.stderr.write(f"\r\033[K{mark} {text}\n")
            sys.stderr.flush()

    def note(self, text: str) -> None:
        """A one-line message that is not a step."""
        info(text)

    @staticmethod
    def _spin(text: str, stop: threading.Event) -> None:
        frame = 0
        while not stop.is_set():
            sys.stderr.write(f"\r{_FRAMES[frame % len(_FRAMES)]} {text}")
            sys.stderr.flush()
            frame += 1
            time.sleep(_FRAME_SECONDS)
