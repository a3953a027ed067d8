"""Invocations from the CLI against the real platform: payload sources,
asynchronous executions, failures of the app itself, and logs."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time

import pytest

from tests.cli.runner import DODIL
from tests.support import SEED_HANDLER

ECHO_HANDLER = b"""import sys

def handler(payload, ctx):
    print("log line from", ctx["execution_id"], file=sys.stderr, flush=True)
    if payload == b'"boom"':
        raise RuntimeError("boom requested")
    return payload
"""


@pytest.fixture
def deployed(ignite):
    """An app `echo` (body in, body out) and `greet` (the seed's handler)."""
    (ignite.cwd / "echo.py").write_bytes(ECHO_HANDLER)
    (ignite.cwd / "greet.py").write_bytes(SEED_HANDLER)
    ignite("ignite", "app", "deploy", "echo", "-c", "echo.py", "--runtime", "python").ok()
    ignite("ignite", "app", "deploy", "greet", "-c", "greet.py", "--runtime", "python").ok()
    return ignite


def test_payload_sources(deployed):
    body = '{"n": [1, 2, 3]}'
    piped = deployed("ignite", "invoke", "echo", "-p", body).ok()
    # Piped stdout carries the app's bytes unchanged.
    assert piped.stdout == body
    assert piped.stderr.startswith("execution_id: ")

    (deployed.cwd / "payload.json").write_text(body)
    assert deployed("ignite", "invoke", "echo", "-f", "payload.json").ok().stdout == body
    assert deployed("ignite", "invoke", "echo", input=body).ok().stdout == body
    raw = deployed("ignite", "invoke", "echo", "-p", "not json", "--raw").ok()
    assert raw.stdout == "not json"


def test_app_failure_exits_12_after_printing_the_body(deployed):
    result = deployed("ignite", "invoke", "echo", "-p", '"boom"')
    assert result.code == 12
    assert "the app answered HTTP 500" in result.error_line()


def test_async_invoke_wait_get_list(deployed, org):
    submitted = deployed("ignite", "invoke", "greet", "--async", "-p", '{"name": "Lin"}').ok()
    execution_id = submitted.stdout.strip()
    assert execution_id

    waited = deployed("ignite", "execution", "wait", execution_id, "--timeout", "60").ok()
    assert json.loads(waited.stdout)["greeting"] == "Hello, Lin!"

    got = json.loads(deployed("ignite", "execution", "get", execution_id, "-o", "json").ok().stdout)
    assert got["status"] == "EXECUTION_STATUS_COMPLETED"
    assert got["app_id"] == f"{org}/greet"

    listed = json.loads(deployed("ignite", "execution", "list", "greet", "-o", "json").ok().stdout)
    assert execution_id in [e["id"] for e in listed]
    completed = deployed("ignite", "execution", "list", "--status", "completed", "-o", "json").ok()
    assert execution_id in [e["id"] for e in json.loads(completed.stdout)]
    failed = deployed("ignite", "execution", "list", "greet", "--status", "failed", "-o", "json")
    assert json.loads(failed.ok().stdout) == []


def test_idempotency_key_returns_the_same_execution(deployed):
    args = ["ignite", "invoke", "greet", "--async", "--idempotency-key", "order-17", "-p", "{}"]
    first = deployed(*args).ok().stdout.strip()
    assert deployed(*args).ok().stdout.strip() == first


def test_version_pinning_and_rollback(ignite):
    for answer in ("one", "two"):
        source = f"def handler(payload, ctx):\n    return {answer!r}\n"
        (ignite.cwd / "handler.py").write_text(source)
        ignite("ignite", "app", "deploy", "pinned", "-c", "handler.py", "--runtime", "python").ok()
    # A text answer ends with a newline even when the handler's does not.
    assert ignite("ignite", "invoke", "pinned").ok().stdout == "two\n"
    assert ignite("ignite", "invoke", "pinned", "--version", "1").ok().stdout == "one\n"
    ignite("ignite", "app", "rollback", "pinned", "--version", "1").ok()
    assert ignite("ignite", "invoke", "pinned").ok().stdout == "one\n"


def test_logs_of_one_execution(deployed):
    submitted = deployed("ignite", "invoke", "echo", "--async", "-p", "{}").ok()
    execution_id = submitted.stdout.strip()
    deployed("ignite", "execution", "wait", execution_id, "--timeout", "60").ok()
    lines = deployed("ignite", "logs", "echo", "--execution", execution_id, "-o", "json").ok()
    messages = [json.loads(line)["message"] for line in lines.stdout.splitlines()]
    assert f"log line from {execution_id}" in messages


SLEEPY_HANDLER = b"""import sys, time

def handler(payload, ctx):
    print("started", ctx["execution_id"], file=sys.stderr, flush=True)
    time.sleep(30)
    return "late"
"""


def test_cancel_then_wait_reports_the_failure(ignite):
    (ignite.cwd / "sleepy.py").write_bytes(SLEEPY_HANDLER)
    ignite("ignite", "app", "deploy", "sleepy", "-c", "sleepy.py", "--runtime", "python").ok()
    execution_id = ignite("ignite", "invoke", "sleepy", "--async").ok().stdout.strip()
    impatient = ignite("ignite", "execution", "wait", execution_id, "--timeout", "1")
    assert impatient.code == 10
    assert "after 1s" in impatient.error_line()
    ignite("ignite", "execution", "cancel", execution_id).ok()
    waited = ignite("ignite", "execution", "wait", execution_id, "--timeout", "60")
    assert waited.code == 12
    assert f"execution {execution_id} cancelled" in waited.error_line()


def test_failed_async_execution_exits_12(deployed):
    submitted = deployed("ignite", "invoke", "echo", "--async", "-p", '"boom"').ok()
    execution_id = submitted.stdout.strip()
    waited = deployed("ignite", "execution", "wait", execution_id, "--timeout", "60")
    assert waited.code == 12
    assert waited.error_line().startswith(f"error: execution {execution_id} failed")


def test_logs_follow_streams_until_interrupted(deployed):
    follower = subprocess.Popen(
        [str(DODIL), "ignite", "logs", "echo", "-f"],
        cwd=deployed.cwd,
        env=deployed.environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.put(line)

    # A reader thread, so a log line that never comes fails the test by
    # timeout instead of blocking it on readline.
    threading.Thread(target=read, daemon=True).start()
    try:
        submitted = deployed("ignite", "invoke", "echo", "--async", "-p", "{}").ok()
        execution_id = submitted.stdout.strip()
        deadline = time.monotonic() + 60
        wanted = f"log line from {execution_id}"
        while wanted not in lines.get(timeout=max(0.1, deadline - time.monotonic())):
            pass
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=30)
    assert follower.returncode == 130
    assert follower.stderr is not None
    assert "Traceback" not in follower.stderr.read()
