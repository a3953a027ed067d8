"""``dodil ignite app``: create, read, change, delete and roll back apps."""

from __future__ import annotations

import sys

import click
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.appspec import AppSpec, create_request, update_for
from dodil_cli.code import build_upload, check_code_path
from dodil_cli.commands.deploy import deploy
from dodil_cli.completion import complete_app_ids
from dodil_cli.errors import CliError
from dodil_cli.lifecycle import get_app, update_app
from dodil_cli.options import app_settings, common_options, pass_session
from dodil_cli.output import warn
from dodil_cli.session import Session
from dodil_cli.views import app_detail, app_list, host_conflict_list, runtime_text

#: Apps fetched per ListApps page; the server's maximum.
_PAGE_SIZE = 500


@click.group("app")
def app_group() -> None:
    """Create, inspect, change and delete apps."""


app_group.add_command(deploy)


@app_group.command("create")
@click.argument("name", metavar="[ORG:]NAME")
@app_settings(create=True)
@click.option(
    "-c", "--code", "code", metavar="PATH", help="Also save this file or directory as the draft."
)
@common_options
@pass_session
def create(session: Session, name: str, spec: AppSpec, code: str | None) -> None:
    """Register a new app (metadata only unless --code is given)."""
    ref = session.app_ref(name)
    request = create_request(ref, spec)
    if code is not None:
        path = check_code_path(code)
        request.code.CopyFrom(build_upload(path, request.runtime, warn).source)
    with session.progress.step(f"Creating app {ref}"):
        response = session.client.call("CreateApp", request)
    app = response.app
    session.printer.emit(app, f"Created app {ref} ({runtime_text(app.runtime)}).")


@app_group.command("get")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@common_options
@pass_session
def get(session: Session, app_id: str) -> None:
    """Show one app; env values only with --show-env (they are often secrets)."""
    app = get_app(session, session.app_ref(app_id))
    session.printer.emit(app, lambda: app_detail(app, show_env=session.show_env))


@app_group.command("list")
@common_options
@pass_session
def list_(session: Session) -> None:
    """List the organization's apps (--org, or the default organization)."""
    org = session.require_organization()
    apps: list[common.AppMeta] = []
    token = ""
    while True:
        request = compute.ListAppsRequest(
            organization_name=org, page_size=_PAGE_SIZE, page_token=token
        )
        response = session.client.call("ListApps", request)
        apps += response.apps
        token = response.next_page_token
        if not token:
            break
    session.printer.emit(apps, lambda: app_list(apps))


@app_group.command("update")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@app_settings(create=False)
@common_options
@pass_session
def update(session: Session, app_id: str, spec: AppSpec) -> None:
    """Change an app's settings; only the flags given change.

    --env adds or replaces variables, --unset-env removes them. A new
    --runtime applies from the next draft that is saved.
    """
    ref = session.app_ref(app_id)
    current = get_app(session, ref)
    change = update_for(spec, current)
    if not change.paths:
        session.progress.note(f"{ref}: nothing to change")
        session.printer.emit(current, lambda: app_detail(current, show_env=session.show_env))
        return
    app = update_app(session, ref, change)
    session.printer.emit(app, lambda: app_detail(app, show_env=session.show_env))


@app_group.command("delete")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@common_options
@pass_session
def delete(session: Session, app_id: str, yes: bool) -> None:
    """Delete an app with all its versions, executions and logs."""
    ref = session.app_ref(app_id)
    # Asking only on a terminal: scripts and CI have no one to answer.
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete {ref} with all its versions and executions?", abort=True, err=True)
    request = compute.DeleteAppRequest(organization_name=ref.organization, app_name=ref.name)
    response = session.client.call("DeleteApp", request)
    session.printer.emit(response, f"Deleted app {ref}.")


@app_group.command("rollback")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@click.option(
    "--version", "version", type=click.IntRange(1), required=True, help="Version to serve."
)
@common_options
@pass_session
def rollback(session: Session, app_id: str, version: int) -> None:
    """Make an earlier published version the active one."""
    ref = session.app_ref(app_id)
    request = compute.RollbackAppRequest(
        organization_name=ref.organization, app_name=ref.name, version=version
    )
    app = session.client.call("RollbackApp", request).app
    if app.active_version != version:
        raise CliError(f"{ref} reports active version {app.active_version}, not {version}")
    session.printer.emit(app, f"{ref} now serves version {version}.")


@app_group.command("host-conflicts")
@common_options
@pass_session
def host_conflicts(session: Session) -> None:
    """List apps whose URL host name another app also had before host names
    were unique (platform administrators). Such a URL serves none of them
    until all but one are deleted."""
    response = session.client.call("ListHostConflicts", compute.ListHostConflictsRequest())
    conflicts = list(response.conflicts)
    session.printer.emit(conflicts, lambda: host_conflict_list(conflicts))
