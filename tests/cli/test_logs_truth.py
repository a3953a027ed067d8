"""The app's log tells what happened, in order, through the installed
``dodil`` against the real platform:

- 1,000 lines printed by one request read back in the order printed by
  ``logs``, ``logs --execution`` and ``logs -f``;
- every invocation leaves a REQUEST line (method, path, status, duration,
  version, execution id), a cold one a COLD START line, a timed-out one a
  TIMEOUT line;
- a Go handler's ``log`` lines of asynchronous executions carry their
  execution id, every time.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.runner import DODIL, Dodil

EXAMPLES = Path(__file__).resolve().parents[2] / "runtimes"
LINES = 1000
BURST = f"""\
import json, time

def handler(payload, ctx):
    event = json.loads(payload) if payload else {{}}
    if event.get("sleep"):
        time.sleep(event["sleep"])
    for n in range(1, {LINES} + 1):
        print(f"line {{n:04d}}")
    return {{"printed": {LINES}}}
"""


def _messages(output: str) -> list[str]:
    return [json.loads(line)["message"] for line in output.splitlines() if line.strip()]


def _numbered(messages: list[str]) -> list[str]:
    return [m for m in messages if re.fullmatch(r"line \d{4}", m)]


def _wait_for(fetch, check, what: str, secs: float = 30):
    deadline = time.monotonic() + secs
    while True:
        value = fetch()
        if check(value):
            return value
        assert time.monotonic() < deadline, f"{what}: {value!r}"[:2000]
        time.sleep(0.3)


def test_a_burst_reads_back_in_order_with_its_request_line(ignite: Dodil, org: str) -> None:
    (ignite.cwd / "handler.py").write_text(BURST)
    ignite(
        "ignite", "app", "deploy", "burst", "-c", "handler.py", "--runtime", "python",
        "--timeout-secs", "2", "--scaledown-period-secs", "1",
    ).ok()  # fmt: skip
    # The publish made a pod ready; once it is gone the next request is cold.
    _wait_for(
        lambda: json.loads(ignite("ignite", "app", "get", "burst", "-o", "json").ok().stdout),
        lambda app: not app.get("ready_replicas", 0),
        "the readiness pod never went away",
    )
    follower = subprocess.Popen(
        [str(DODIL), "ignite", "logs", "burst", "-f", "-o", "json"],
        cwd=ignite.cwd, env=ignite.environ(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # the follower is past its first read
        invoked = ignite("ignite", "invoke", "burst", "-p", "{}").ok()
        execution_id = invoked.stderr.split("execution_id:")[1].split()[0]
        expected = [f"line {n:04d}" for n in range(1, LINES + 1)]

        logs = _wait_for(
            lambda: _messages(
                ignite("ignite", "logs", "burst", "--limit", "5000", "-o", "json").ok().stdout
            ),
            lambda m: any(x.startswith("REQUEST") for x in m),
            "no request line",
        )
        assert _numbered(logs) == expected
        request = next(m for m in logs if m.startswith("REQUEST"))
        assert re.fullmatch(
            rf"REQUEST POST / 200 \d+ ms version=1 execution={execution_id}"
            r" cold_start=\d+ ms",
            request,
        ), request
        cold = [m for m in logs if m.startswith("COLD START")]
        assert len(cold) == 1, logs[-5:]
        # The platform's lines come after the handler's.
        assert logs.index(request) > logs.index("line 1000")

        by_execution = _messages(
            ignite("ignite", "logs", "burst", "--execution", execution_id, "-o", "json").ok().stdout
        )
        assert _numbered(by_execution) == expected
        assert request in by_execution

        followed: list[str] = []
        deadline = time.monotonic() + 30
        assert follower.stdout is not None
        while request not in followed:
            assert time.monotonic() < deadline, followed[-3:]
            followed.append(json.loads(follower.stdout.readline())["message"])
        assert _numbered(followed) == expected
    finally:
        follower.terminate()
        follower.wait(10)

    # A handler past its timeout: a TIMEOUT line and a request line saying so.
    late = ignite("ignite", "invoke", "burst", "-p", '{"sleep": 5}')
    assert late.code != 0
    logs = _wait_for(
        lambda: _messages(
            ignite("ignite", "logs", "burst", "--limit", "5000", "-o", "json").ok().stdout
        ),
        lambda m: (
            any(x.startswith("TIMEOUT") for x in m)
            and any(re.match(r"REQUEST POST / TIMEOUT ", x) for x in m)
        ),
        "no timeout lines",
    )
    assert any("2s" in m for m in logs if m.startswith("TIMEOUT")), logs[-3:]


GO_LOGGING = """\
package main

import (
	"log"

	"ignite"
)

func handler(payload []byte, ctx *ignite.Context) ([]byte, error) {
	log.Printf("handling %s", ctx.ExecutionID)
	return []byte("ok"), nil
}

func main() {
	ignite.Start(handler)
}
"""


@pytest.mark.timeout(900)
def test_go_output_of_async_executions_keeps_its_execution_id(ignite: Dodil, org: str) -> None:
    shutil.copytree(EXAMPLES / "go" / "examples" / "hello", ignite.cwd / "go")
    (ignite.cwd / "go" / "main.go").write_text(GO_LOGGING)
    ignite(
        "ignite", "app", "deploy", "golog", "--code", "go", "--runtime", "go", timeout=600
    ).ok()  # fmt: skip
    for _ in range(4):
        submitted = ignite("ignite", "invoke", "golog", "--async", "-p", "{}").ok()
        execution_id = submitted.stdout.strip().split()[-1].split(":")[-1]
        ignite("ignite", "execution", "wait", execution_id).ok()
        lines = _wait_for(
            lambda eid=execution_id: _messages(
                ignite("ignite", "logs", "golog", "--execution", eid, "-o", "json").ok().stdout
            ),
            lambda m, eid=execution_id: any(x.endswith(f"handling {eid}") for x in m),
            f"the handler's line of {execution_id} is not under its id",
        )
        assert any(x.startswith("REQUEST") for x in lines)
