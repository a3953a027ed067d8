"""Shell completion of app ids, asked of the API while the user types.

Completion must never get in the way: it uses a short deadline and returns
nothing on any failure (no server, no config, no token) instead of an error.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.session import Session

#: Seconds a completion may wait for the API before giving up silently.
_DEADLINE_SECONDS = 2.0


def complete_app_ids(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """App ids starting with ``incomplete``: ``name`` in the default org, else ``org:name``."""
    session = ctx.find_object(Session) or Session()
    try:
        org, sep, prefix = incomplete.rpartition(":")
        org = org or session.organization or ""
        if not org:
            return []
        request = compute.ListAppsRequest(organization_name=org, page_size=500)
        response = session.client.call("ListApps", request, timeout=_DEADLINE_SECONDS)
    except Exception:  # completion must stay silent whatever went wrong
        return []
    finally:
        session.close()
    lead = f"{org}:" if sep else ""
    return [CompletionItem(lead + app.name) for app in response.apps if app.name.startswith(prefix)]
