"""The worker's outcome table (docs/executions.md): what each way an
execution ends records as status, error_class, and whether it is retried."""

from __future__ import annotations

import pytest

from ignite_server.core.worker import _handler_error, answer_outcome, failure_outcome
from ignite_server.domain.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    IgniteError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from ignite_server.domain.models import ExecutionStatus

COMPLETED, FAILED, TIMEOUT = (
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.TIMEOUT,
)


@pytest.mark.parametrize(
    ("status_code", "expected"),
    [
        (200, (COMPLETED, "", False)),
        (204, (COMPLETED, "", False)),
        (302, (COMPLETED, "", False)),
        (400, (FAILED, "client", False)),
        (404, (FAILED, "client", False)),
        (499, (FAILED, "client", False)),
        (500, (FAILED, "user_code", True)),
        (503, (FAILED, "user_code", True)),
    ],
)
def test_an_answered_execution_is_classed_by_its_status(status_code: int, expected: tuple) -> None:
    assert answer_outcome(status_code) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (DeadlineExceeded("past 5s", reason="EXECUTION_TIMEOUT"), (TIMEOUT, "user_code", False)),
        (Unavailable("the pod exited", reason="POD_EXITED"), (FAILED, "platform", True)),
        (ResourceExhausted("killed", reason="OUT_OF_MEMORY"), (FAILED, "platform", True)),
        (Unavailable("no start", reason="ACTIVATION_FAILED"), (FAILED, "platform", True)),
        (NotFound("app gone", reason="APP_NOT_FOUND"), (FAILED, "client", False)),
        (FailedPrecondition("unpublished", reason="NOT_PUBLISHED"), (FAILED, "client", False)),
        (InvalidArgument("bad version", reason="INVALID_VERSION"), (FAILED, "client", False)),
    ],
)
def test_an_unanswered_execution_is_classed_by_why(error: IgniteError, expected: tuple) -> None:
    assert failure_outcome(error) == expected


def test_the_error_of_a_failed_answer_is_the_runtimes_message() -> None:
    assert _handler_error(b'{"error": "division by zero"}') == "division by zero"
    assert _handler_error(b"plain text") == "plain text"
    assert _handler_error(b"x" * 5000) == "x" * 2000
