"""``dodil ignite logs``: an app's (or one execution's) log entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.completion import complete_app_ids
from dodil_cli.errors import UsageError
from dodil_cli.options import common_options, pass_session
from dodil_cli.output import message_to_dict, out
from dodil_cli.session import Session
from dodil_cli.views import log_line

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_ms(text: str, now: datetime | None = None) -> int:
    """``--since``: a duration back from now (``90s``, ``10m``, ``2h``, ``1d``) in Unix ms."""
    now = now or datetime.now(UTC)
    number, unit = text[:-1], text[-1:].lower()
    if unit not in _UNITS or not number.isdigit():
        raise UsageError(f"invalid --since {text!r}: use a number with s, m, h or d, e.g. 10m")
    return int((now - timedelta(seconds=int(number) * _UNITS[unit])).timestamp() * 1000)


@click.command("logs")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@click.option("--execution", "execution_id", metavar="ID", help="Only this execution's entries.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new entries until Ctrl-C.")
@click.option("--since", metavar="DURATION", help="Only entries newer than this, e.g. 10m.")
@click.option(
    "--limit",
    type=click.IntRange(1),
    help=(
        "At most this many past entries (default 1000; with --execution, "
        "the execution's whole log, up to 10000)."
    ),
)
@common_options
@pass_session
def logs(
    session: Session,
    app_id: str,
    execution_id: str | None,
    follow: bool,
    since: str | None,
    limit: int | None,
) -> None:
    """Print an app's logs: handler output, platform events and builds.

    With -o json or yaml each entry is printed as it arrives, one JSON object
    per line (or one YAML document each).
    """
    ref = session.app_ref(app_id)
    request = compute.ReadLogsRequest(
        organization_name=ref.organization,
        app_name=ref.name,
        execution_id=session.execution_ref(execution_id).execution_id if execution_id else "",
        follow=follow,
        since_ms=since_ms(since) if since else 0,
        limit=limit or 0,
    )
    for response in session.client.stream("ReadLogs", request):
        entry = response.entry
        if session.output == "json":
            out(json.dumps(message_to_dict(entry), ensure_ascii=False))
        elif session.output == "yaml":
            out("---")
            session.printer.emit(entry, "")
        else:
            out(log_line(entry))
