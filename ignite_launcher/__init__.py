"""ignite_launcher: the whole platform as real processes on this machine.

It starts ``ignite-server`` and ``ignite-gateway`` as child processes, the
way a user runs them; `make run` (``python -m ignite_launcher``), the
end-to-end tests and the benchmarks all go through it.

* :mod:`.platform` — LocalPlatform: start, wait for, restart and stop both;
* :mod:`.state` — temporary state directories for tests and benchmarks;
* :mod:`.cli_login`, :mod:`.banner` — what `make run` does once it serves.
"""

from ignite_launcher.platform import LocalPlatform, free_port, temporary_platform
from ignite_launcher.state import TEMPORARY_STATE_DIRS, private_state_dir

__all__ = [
    "TEMPORARY_STATE_DIRS",
    "LocalPlatform",
    "free_port",
    "private_state_dir",
    "temporary_platform",
]
