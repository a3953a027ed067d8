"""The image-build namespace on its own: who a command is there, and what
it can see of the host."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ignite_server.containment.sandbox import SYSTEM_PATHS
from ignite_server.images import user_namespace

#: Host uids the tests' namespaces map (below every server's block).
IMAGE_BUILD_UID_BASE = 2_000_000


def run(
    script: str, *, ro: Sequence[Path] = (), rw: Sequence[Path] = ()
) -> subprocess.CompletedProcess[str]:
    """``sh -c script`` in the namespace, seeing the system, ``ro`` and ``rw``."""
    argv = [sys.executable, "-I", user_namespace.__file__]
    argv += ["--uid-base", str(IMAGE_BUILD_UID_BASE), "--count", "65536"]
    for path in (*SYSTEM_PATHS, "/etc", *map(str, ro)):
        argv += ["--ro", path]
    for path in rw:
        argv += ["--rw", str(path)]
    argv += ["--tmpfs", "/tmp", "--", "/bin/sh", "-c", script]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_the_command_is_root_inside_and_an_unprivileged_uid_outside(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    # As the builder hands its folders over to the namespace's root.
    os.chown(tmp_path / "out", IMAGE_BUILD_UID_BASE, IMAGE_BUILD_UID_BASE)
    done = run(
        "id -u; cat /proc/self/uid_map; grep NoNewPrivs /proc/self/status; "
        "touch /tmp/scratch && touch " + str(tmp_path / "out" / "made"),
        rw=[tmp_path / "out"],
    )
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert lines[0] == ["0"]
    assert lines[1] == ["0", str(IMAGE_BUILD_UID_BASE), "65536"]
    assert lines[2] == ["NoNewPrivs:", "1"]
    assert (tmp_path / "out" / "made").stat().st_uid == IMAGE_BUILD_UID_BASE


def test_only_the_given_paths_are_there_and_read_only_ones_stay_so(tmp_path: Path) -> None:
    (tmp_path / "context").mkdir()
    (tmp_path / "elsewhere").mkdir()
    done = run(
        f"ls {tmp_path}; touch {tmp_path}/context/x || echo read-only; ls /",
        ro=[tmp_path / "context"],
    )
    assert done.stdout.split("\n")[0] == "context"
    assert "read-only" in done.stdout
    assert "Read-only file system" in done.stderr
    top = set(done.stdout.split("\n")[2:])
    assert "root" not in top and "home" not in top


def test_files_of_host_root_stay_closed_even_when_in_view(tmp_path: Path) -> None:
    """Belt and braces: were the state in the view, root's 0700 folder would
    still be closed to the namespace (its root is not host root)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    canary = secrets.token_hex(8)
    (state / "key").write_text(canary)
    done = run(f"cat {state}/key; ls {state}; touch {state}/new", ro=[tmp_path], rw=[])
    assert canary not in done.stdout
    assert done.stderr.count("Permission denied") == 3, done.stderr
