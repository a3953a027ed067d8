"""Code that runs while dependencies install runs only in the build sandbox.

The requirements validator refuses local paths at SaveDraft; this is the
layer behind it. A project whose PEP 517 build backend tries to leave a
marker on the host and read the server's credentials is handed straight to
the pipeline's pip step (as if it had slipped through): it runs, as the
build uid, and finds neither the host's /tmp nor the credentials.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from ignite_server.builds.python import PythonPipeline
from ignite_server.containment.identities import BUILD_UID
from ignite_server.domain.models import RuntimeKind, RuntimeSpec
from ignite_server.ports.build_pipeline import BuildFailed, BuildRequest

BACKEND = """
import os, sys

def report(what, fn):
    try:
        print(f"EVIL {what}: allowed {fn()!r}"[:300], file=sys.stderr)
    except Exception as exc:
        print(f"EVIL {what}: {type(exc).__name__}", file=sys.stderr)

report("uid", os.getuid)
report("host marker", lambda: open(@marker@, "w").write("pwned"))
report("state marker", lambda: open(@state_marker@, "w").write("pwned"))
report("credentials", lambda: open(@credentials@).read())
report("listdir state", lambda: os.listdir(@state@))
raise SystemExit("the backend is done")
"""


async def test_a_build_backend_that_slips_through_stays_in_the_sandbox(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    credentials = state / "admin-credentials.json"
    credentials.write_text('{"client_secret": "ign_canary_do_not_leak"}')
    credentials.chmod(0o600)
    marker = Path("/tmp") / f"ignite-escape-{uuid.uuid4().hex}"
    state_marker = state / "pwned"

    work = tmp_path / "work"
    (work / "evil").mkdir(parents=True)
    (work / "requirements.txt").write_text("./evil\n")
    (work / "evil" / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
    )
    (work / "evil" / "backend.py").write_text(
        BACKEND.replace("@marker@", repr(str(marker)))
        .replace("@state_marker@", repr(str(state_marker)))
        .replace("@credentials@", repr(str(credentials)))
        .replace("@state@", repr(str(state)))
    )
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "pip-cache").mkdir()
    logs: list[str] = []
    request = BuildRequest(
        RuntimeSpec(RuntimeKind.PYTHON), work, tmp_path / "out", tmp_path / "cache", logs.append
    )
    with pytest.raises(BuildFailed):
        await PythonPipeline().run_pip(work, target, tmp_path / "pip-cache", request)

    said = {
        line.split(": ", 1)[0].removeprefix("EVIL "): line.split(": ", 1)[1]
        for line in map(str.strip, logs)
        if line.startswith("EVIL ")
    }
    # The backend did run (so the sandbox, not pip, is what stopped it) ...
    assert said, "\n".join(logs)
    if os.geteuid() == 0:
        assert said["uid"] == f"allowed {BUILD_UID}"
    # ... and reached nothing of the host: its /tmp was the sandbox's own.
    assert said["host marker"].startswith("allowed")
    assert not marker.exists()
    assert not state_marker.exists()
    assert said["credentials"] in ("FileNotFoundError", "PermissionError")
    assert said["listdir state"] in ("FileNotFoundError", "PermissionError")
    assert not any("ign_canary_do_not_leak" in line for line in logs)
