"""``dodil ignite version``: an app's published, immutable versions."""

from __future__ import annotations

import click
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.completion import complete_app_ids
from dodil_cli.errors import UsageError
from dodil_cli.lifecycle import get_app
from dodil_cli.options import common_options, pass_session
from dodil_cli.session import Session
from dodil_cli.views import app_detail, version_detail, version_list

#: Versions fetched per ListVersions page; the server's maximum.
_PAGE_SIZE = 500


@click.group("version")
def version_group() -> None:
    """Inspect an app's published versions."""


@version_group.command("list")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@common_options
@pass_session
def list_(session: Session, app_id: str) -> None:
    """List the app's versions, newest first, with their status, share of
    the traffic, tags, settings, who published them and their message."""
    ref = session.app_ref(app_id)
    versions: list[compute.AppVersionInfo] = []
    token = ""
    while True:
        request = compute.ListVersionsRequest(
            organization_name=ref.organization,
            app_name=ref.name,
            page_size=_PAGE_SIZE,
            page_token=token,
        )
        response = session.client.call("ListVersions", request)
        versions += response.versions
        token = response.next_page_token
        if not token:
            break
    session.printer.emit(versions, lambda: version_list(versions))


@version_group.command("get")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@click.argument("number", type=click.IntRange(0), required=False)
@click.option(
    "--version", "version_opt", type=click.IntRange(0), help="Version number (0 = the draft)."
)
@common_options
@pass_session
def get(session: Session, app_id: str, number: int | None, version_opt: int | None) -> None:
    """Show one version (default: the active one): its settings, who
    published it, its share of the traffic and tags, and its build log."""
    ref = session.app_ref(app_id)
    if number is not None and version_opt is not None and number != version_opt:
        raise UsageError("give the version once, as an argument or with --version")
    version = number if number is not None else version_opt
    if version is None:
        version = get_app(session, ref).active_version
        if not version:
            raise UsageError(f"{ref} has no published version yet: name one (0 = the draft)")
    request = compute.GetVersionRequest(
        organization_name=ref.organization, app_name=ref.name, version=version
    )
    response = session.client.call("GetVersion", request)
    session.printer.emit(
        response,
        lambda: version_detail(response.version, response.build_log, show_env=session.show_env),
    )


@version_group.command("tag")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@click.argument("number", type=click.IntRange(1))
@click.argument("tag")
@common_options
@pass_session
def tag(session: Session, app_id: str, number: int, tag: str) -> None:
    """Name version NUMBER with TAG: it gets its own URL,
    <tag>---<app>-<org>.<domain>, and `invoke --tag TAG` reaches it.
    Tagging another version moves the tag."""
    ref = session.app_ref(app_id)
    request = compute.TagVersionRequest(
        organization_name=ref.organization, app_name=ref.name, tag=tag, version=number
    )
    app = session.client.call("TagVersion", request).app
    session.printer.emit(
        app, lambda: f"{ref} version {number} is tagged {tag}.\n\n" + app_detail(app)
    )


@version_group.command("untag")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@click.argument("tag")
@common_options
@pass_session
def untag(session: Session, app_id: str, tag: str) -> None:
    """Remove TAG (its URL stops answering)."""
    ref = session.app_ref(app_id)
    request = compute.UntagVersionRequest(
        organization_name=ref.organization, app_name=ref.name, tag=tag
    )
    app = session.client.call("UntagVersion", request).app
    session.printer.emit(app, lambda: f"{ref}: tag {tag} removed.\n\n" + app_detail(app))
