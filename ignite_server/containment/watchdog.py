"""A watchdog that kills an owner's sandboxes when the server dies, however
it dies.

Pods started through bubblewrap die with the server (``--die-with-parent``),
but an image pod's process is crun, and a container's processes are crun's
children in a pid namespace of their own: a server killed with SIGKILL
leaves them running, re-parented to init, holding memory and ports until
the next start cleans up (cgroups.py ``remove_stale``). A parent-death
signal cannot reach them (crun changes the credentials of the container's
process, which clears it), but every one of them is in the owner's cgroups.

So each owner of sandboxes starts one small process (``start``): it holds
the read end of a pipe whose only write end is the server's, and blocks
reading it. When the server exits, the kernel closes that end, the read
returns, and the watchdog kills every process in the owner's cgroups and
removes them (cgroups.py ``remove_tree``), then exits. The watchdog runs in
a session of its own (a signal to the server's process group does not
reach it), outside the sandboxes' cgroups, with nothing inherited but the
pipe. On an orderly stop the owner removes its cgroups itself and then
closes the pipe (``Watchdog.stop``), and the watchdog finds nothing to do.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from ignite_server.containment.cgroups import remove_tree

#: How long a stopped owner waits for its watchdog to exit.
STOP_WAIT_SECS = 10.0


class Watchdog:
    """The owner's side: the pipe's write end and the watchdog process."""

    def __init__(self, process: subprocess.Popen[bytes], write_fd: int) -> None:
        self.process = process
        self._write_fd: int | None = write_fd

    async def stop(self) -> None:
        """Close the pipe and wait for the watchdog to exit."""
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        try:
            await asyncio.to_thread(self.process.wait, STOP_WAIT_SECS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


def start(bases: Iterable[Path]) -> Watchdog:
    """Start a watchdog over the cgroup folders ``bases``."""
    read_fd, write_fd = os.pipe()  # both close on exec: no sandbox inherits them
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-m", __name__, *(str(base) for base in bases)],
            stdin=read_fd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            env={"PATH": "/usr/bin:/bin"},
        )
    finally:
        os.close(read_fd)
    return Watchdog(process, write_fd)


def main(argv: list[str]) -> None:
    """Wait for the owner to go, then remove its cgroups and everything in
    them."""
    while os.read(0, 4096):
        pass
    for base in argv:
        remove_tree(Path(base))


if __name__ == "__main__":
    main(sys.argv[1:])
