"""``dodil ignite execution``: stored executions of asynchronous invocations."""

from __future__ import annotations

import sys
import time

import click
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.completion import complete_app_ids
from dodil_cli.errors import AppFailedError, CliError
from dodil_cli.ids import ExecutionRef
from dodil_cli.options import common_options, pass_session
from dodil_cli.session import Session
from dodil_cli.views import TERMINAL_STATUSES, execution_detail, execution_list, execution_status

_STATUSES = ("pending", "running", "completed", "failed", "timeout", "cancelled")
#: Executions fetched per page, and the most a listing shows unless --limit.
_PAGE_SIZE = 100
#: First and longest pause between polls of `execution wait`: quick answers
#: come back fast, long ones do not hammer the server.
_FIRST_POLL_SECONDS = 0.2
_MAX_POLL_SECONDS = 2.0


@click.group("execution")
def execution_group() -> None:
    """Inspect, wait for and cancel executions (from invoke --async)."""


def fetch(session: Session, ref: ExecutionRef) -> common.Execution:
    """Fetch one execution."""
    request = compute.GetExecutionRequest(
        organization_name=ref.organization, execution_id=ref.execution_id
    )
    execution: common.Execution = session.client.call("GetExecution", request).execution
    return execution


@execution_group.command("get")
@click.argument("execution_id", metavar="[ORG:]EXECUTION_ID")
@common_options
@pass_session
def get(session: Session, execution_id: str) -> None:
    """Show one execution, with its result."""
    execution = fetch(session, session.execution_ref(execution_id))
    session.printer.emit(execution, lambda: execution_detail(execution))


@execution_group.command("list")
@click.argument("app_id", metavar="[[ORG:]APP]", required=False, shell_complete=complete_app_ids)
@click.option("--status", type=click.Choice(_STATUSES), help="Only executions in this status.")
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=_PAGE_SIZE,
    show_default=True,
    help="At most this many.",
)
@common_options
@pass_session
def list_(session: Session, app_id: str | None, status: str | None, limit: int) -> None:
    """List executions newest first, of one app or of the whole organization."""
    if app_id:
        ref = session.app_ref(app_id)
        org, app_name = ref.organization, ref.name
    else:
        org, app_name = session.require_organization(), ""
    status_value = (
        common.ExecutionStatus.Value(f"EXECUTION_STATUS_{status.upper()}") if status else 0
    )
    executions: list[common.Execution] = []
    token = ""
    while len(executions) < limit:
        request = compute.ListExecutionsRequest(
            organization_name=org,
            app_name=app_name,
            status=status_value,  # type: ignore[arg-type]
            page_size=min(_PAGE_SIZE, limit - len(executions)),
            page_token=token,
        )
        response = session.client.call("ListExecutions", request)
        executions += response.executions
        token = response.next_page_token
        if not token:
            break
    session.printer.emit(executions, lambda: execution_list(executions))


@execution_group.command("wait")
@click.argument("execution_id", metavar="[ORG:]EXECUTION_ID")
@click.option(
    "--timeout", type=click.FloatRange(0), default=300, show_default=True, help="Seconds to wait."
)
@common_options
@pass_session
def wait(session: Session, execution_id: str, timeout: float) -> None:
    """Wait until an execution finishes; print its result (stdout).

    Exits 12 when it ended FAILED, TIMEOUT or CANCELLED, and 10 when it is
    still running after --timeout.
    """
    ref = session.execution_ref(execution_id)
    deadline = time.monotonic() + timeout
    pause = _FIRST_POLL_SECONDS
    with session.progress.step(f"Waiting for {ref}"):
        while True:
            execution = fetch(session, ref)
            if execution.status in TERMINAL_STATUSES:
                break
            if time.monotonic() + pause > deadline:
                raise CliError(
                    f"{ref} is still {execution_status(execution)} after {timeout:g}s", exit_code=10
                )
            time.sleep(pause)
            pause = min(pause * 2, _MAX_POLL_SECONDS)
    print_outcome(session, execution)


def print_outcome(session: Session, execution: common.Execution) -> None:
    """Print a finished execution: its result body, or the execution as data."""
    if session.printer.structured:
        session.printer.emit(execution, "")
    elif execution.result:
        sys.stdout.buffer.write(execution.result)
        if not execution.result.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
    if execution.status != common.EXECUTION_STATUS_COMPLETED:
        raise AppFailedError(
            f"execution {execution.id} {execution_status(execution)}: "
            f"{execution.error or 'no error message'}"
            + (f" ({execution.error_class})" if execution.error_class else "")
        )
    if execution.status_code >= 400:
        raise AppFailedError(
            f"execution {execution.id}: the app answered HTTP {execution.status_code}"
        )


@execution_group.command("cancel")
@click.argument("execution_id", metavar="[ORG:]EXECUTION_ID")
@common_options
@pass_session
def cancel(session: Session, execution_id: str) -> None:
    """Cancel a pending or running execution."""
    ref = session.execution_ref(execution_id)
    request = compute.CancelExecutionRequest(
        organization_name=ref.organization, execution_id=ref.execution_id
    )
    execution = session.client.call("CancelExecution", request).execution
    session.printer.emit(execution, f"{ref}: {execution_status(execution)}")
