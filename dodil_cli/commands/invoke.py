"""``dodil ignite invoke``: run an app and print what it answers.

A synchronous invoke uses the streaming Invoke RPC: the body is written to
stdout as its chunks arrive (pretty-printed when it is JSON and stdout is a
terminal), the execution id goes to stderr. ``-o json|yaml`` prints one
document with both. ``--async`` submits an execution and prints its id.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import click
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.appinfo import INFO_FILE, read_app_info
from dodil_cli.code import check_code_path
from dodil_cli.completion import complete_app_ids
from dodil_cli.errors import AppFailedError, UsageError
from dodil_cli.ids import AppRef
from dodil_cli.options import common_options, pass_session
from dodil_cli.output import info
from dodil_cli.payload import read_payload
from dodil_cli.session import Session
from dodil_cli.views import execution_status

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@click.command("invoke")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@click.option("-p", "--payload", metavar="JSON", help="Request body ('-' reads stdin).")
@click.option(
    "--test-input",
    "test_input",
    is_flag=True,
    help="Send the test_input of info.yaml (in the current directory, or --info).",
)
@click.option(
    "--info",
    "info_path",
    metavar="PATH",
    default=".",
    show_default=True,
    help="With --test-input: the info.yaml, its directory, or a .zip / .tar.gz holding it.",
)
@click.option(
    "-f", "--file", "file", metavar="FILE", help="Read the request body from FILE ('-' = stdin)."
)
@click.option("--raw", is_flag=True, help="Send the body as is, without checking it is JSON.")
@click.option("--async", "async_", is_flag=True, help="Submit an execution and print its id.")
@click.option(
    "--version", type=click.IntRange(1), help="Run this published version, not the active one."
)
@click.option("--draft", is_flag=True, help="Run the compiled draft (synchronous only).")
@click.option("--tag", metavar="TAG", help="Run the version this tag names.")
@click.option(
    "--sticky-key",
    metavar="KEY",
    help="Calls with the same key reach the same version of a traffic split.",
)
@click.option(
    "--method", type=click.Choice(_METHODS, case_sensitive=False), default="POST", show_default=True
)
@click.option("--path", default="/", show_default=True, help="Request path and ?query.")
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="NAME:VALUE",
    help="Request header (repeatable).",
)
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="With --async: resubmitting returns the same execution.",
)
@click.option(
    "--timeout", type=click.FloatRange(0, min_open=True), help="Seconds to wait for the answer."
)
@common_options
@pass_session
def invoke(
    session: Session,
    app_id: str,
    payload: str | None,
    test_input: bool,
    info_path: str,
    file: str | None,
    raw: bool,
    async_: bool,
    version: int | None,
    draft: bool,
    tag: str | None,
    sticky_key: str | None,
    method: str,
    path: str,
    headers: tuple[str, ...],
    idempotency_key: str | None,
    timeout: float | None,
) -> None:
    """Invoke an app with a JSON payload and print its answer.

    The body goes to stdout, the execution id and the version that served to
    stderr. Exits 12 when the app answers with an HTTP error status.
    """
    ref = session.app_ref(app_id)
    if draft and (async_ or version or tag):
        raise UsageError(
            "--draft runs the draft synchronously: it excludes --async, --version and --tag"
        )
    if tag and version:
        raise UsageError("give --version or --tag, not both")
    if idempotency_key and not async_:
        raise UsageError("--idempotency-key applies to --async invocations")
    if test_input:
        if payload is not None or file is not None:
            raise UsageError("--test-input is the payload: it excludes -p and -f")
        body = _test_input(info_path)
    else:
        body = read_payload(payload, file, sys.stdin.buffer, sys.stdin.isatty(), raw=raw)
    path_only, _, query = path.partition("?")
    http = common.HttpContext(
        method=common.HttpMethod.Value(f"HTTP_METHOD_{method.upper()}"),  # type: ignore[arg-type]
        path=path_only or "/",
        query=query,
        headers={
            "content-type": "application/octet-stream" if raw else "application/json",
            **_headers(headers),
        },
    )
    if async_:
        _invoke_async(
            session, ref.organization, ref.name, http, body, version, idempotency_key, tag
        )
        return
    request = compute.InvokeRequest(
        organization_name=ref.organization,
        app_name=ref.name,
        http=http,
        body=body,
        version=version or 0,
        draft=draft,
        tag=tag or "",
        sticky_key=sticky_key or "",
    )
    _invoke_streaming(session, request, timeout)


def _test_input(info_path: str) -> bytes:
    """info.yaml's test_input, from the file, its directory or an archive."""
    path = check_code_path(info_path)
    if path.is_file() and path.name == INFO_FILE:
        path = path.parent
    app_info = read_app_info(path)
    if app_info is None:
        raise UsageError(f"--test-input: no {INFO_FILE} in {info_path}")
    if app_info.test_input is None:
        raise UsageError(f"--test-input: {INFO_FILE} in {info_path} has no test_input")
    return app_info.test_input


def invoke_once(session: Session, ref: AppRef, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` (JSON) to the app's active version: (HTTP status, response body)."""
    request = compute.InvokeRequest(
        organization_name=ref.organization,
        app_name=ref.name,
        http=common.HttpContext(
            method=common.HTTP_METHOD_POST,
            path="/",
            headers={"content-type": "application/json"},
        ),
        body=body,
    )
    status = 0
    chunks: list[bytes] = []
    for frame in session.client.stream("Invoke", request):
        kind = frame.WhichOneof("frame")
        if kind == "head":
            status = frame.head.status_code
        elif kind == "chunk":
            chunks.append(frame.chunk.data)
    return status, b"".join(chunks)


def _headers(pairs: tuple[str, ...]) -> dict[str, str]:
    headers = {}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"invalid header {pair!r}: expected NAME:VALUE")
        headers[name.strip().lower()] = value.strip()
    return headers


def _invoke_streaming(
    session: Session, request: compute.InvokeRequest, timeout: float | None
) -> None:
    structured = session.printer.structured
    # Stream straight through when piped; buffer on a terminal to pretty-print.
    pass_through = not structured and not sys.stdout.isatty()
    head: compute.InvokeHead | None = None
    trailer = compute.InvokeTrailer()
    chunks: list[bytes] = []
    last = b""
    for frame in session.client.stream("Invoke", request, timeout=timeout):
        kind = frame.WhichOneof("frame")
        if kind == "head":
            head = frame.head
            if not structured:
                info(f"execution_id: {head.execution_id}")
                if head.version:
                    info(f"version: {head.version}")
        elif kind == "chunk":
            if pass_through:
                sys.stdout.buffer.write(frame.chunk.data)
                sys.stdout.buffer.flush()
                last = frame.chunk.data[-1:] or last
            else:
                chunks.append(frame.chunk.data)
        elif kind == "trailer":
            trailer = frame.trailer
    if head is None:
        raise AppFailedError("the invocation ended without a response")
    if pass_through and last and last != b"\n" and _is_text(head):
        # A text answer ends its line, as every other command's output does,
        # so the shell prompt (or the next line of a log) starts on its own.
        sys.stdout.buffer.write(b"\n")
        sys.stdout.buffer.flush()
    body = b"".join(chunks)
    if structured:
        session.printer.emit(_result_document(head, trailer, body), "")
    elif not pass_through:
        _print_for_terminal(body)
    if head.status_code >= 400:
        raise AppFailedError(
            f"the app answered HTTP {head.status_code} (execution {head.execution_id})"
        )


def _is_text(head: compute.InvokeHead) -> bool:
    """Whether the response is text (JSON or text/*), which gets a final newline."""
    headers = {k.lower(): v for k, v in head.response_headers.items()}
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    return kind.startswith("text/") or kind == "application/json" or kind.endswith("+json")


def _result_document(
    head: compute.InvokeHead, trailer: compute.InvokeTrailer, body: bytes
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "execution_id": head.execution_id,
        "version": head.version,
        "status_code": head.status_code,
        "response_headers": dict(head.response_headers),
    }
    try:
        document["result"] = json.loads(body) if body.strip() else None
    except ValueError:
        try:
            document["result"] = body.decode("utf-8")
        except UnicodeDecodeError:
            document["result"] = base64.b64encode(body).decode("ascii")
            document["result_encoding"] = "base64"
    document["total_body_bytes"] = trailer.total_body_bytes
    document["duration_ms"] = trailer.duration_ms
    return document


def _print_for_terminal(body: bytes) -> None:
    try:
        text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        text = body.decode("utf-8", errors="replace")
    if text:
        click.echo(text)


def _invoke_async(
    session: Session,
    org: str,
    app_name: str,
    http: common.HttpContext,
    body: bytes,
    version: int | None,
    idempotency_key: str | None,
    tag: str | None,
) -> None:
    request = compute.InvokeAsyncRequest(
        organization_name=org,
        app_name=app_name,
        http=http,
        body=body,
        version=version or 0,
        idempotency_key=idempotency_key or "",
        tag=tag or "",
    )
    response = session.client.call("InvokeAsync", request)
    session.printer.emit(response, response.execution_id)
    if not session.printer.structured:
        info(
            f"{execution_status(response.execution)}; follow it with: "
            f"dodil ignite execution wait {org}:{response.execution_id}"
        )
