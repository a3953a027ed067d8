"""``dodil ignite draft``: the mutable draft slot (version 0) of an app."""

from __future__ import annotations

import click
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.appspec import RUNTIMES, TARGETS
from dodil_cli.code import check_code_path
from dodil_cli.completion import complete_app_ids
from dodil_cli.lifecycle import compile_draft, publish_draft, runtime_override, save_draft
from dodil_cli.options import common_options, pass_session
from dodil_cli.session import Session
from dodil_cli.views import app_detail, version_detail


@click.group("draft")
def draft_group() -> None:
    """Save, build and publish an app's draft."""


@draft_group.command("save")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@click.option(
    "-c",
    "--code",
    "code",
    required=True,
    metavar="PATH",
    help="A source file, or a project directory (packed; .gitignore/.igniteignore apply).",
)
@click.option("--runtime", type=click.Choice(RUNTIMES), help="Runtime (default: the app's).")
@click.option(
    "--rust-target", "--target", "target", type=click.Choice(TARGETS), help="rust/go target."
)
@click.option("--runtime-version", metavar="V", help="Interpreter version or toolchain.")
@common_options
@pass_session
def save(
    session: Session,
    app_id: str,
    code: str,
    runtime: str | None,
    target: str | None,
    runtime_version: str | None,
) -> None:
    """Upload code into the draft slot (replacing the previous draft)."""
    ref = session.app_ref(app_id)
    path = check_code_path(code)
    draft = save_draft(session, ref, path, runtime_override(runtime, target, runtime_version))
    session.printer.emit(draft, lambda: version_detail(draft))


@draft_group.command("get")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@common_options
@pass_session
def get(session: Session, app_id: str) -> None:
    """Show the draft and the log of its last build."""
    ref = session.app_ref(app_id)
    request = compute.GetDraftRequest(organization_name=ref.organization, app_name=ref.name)
    response = session.client.call("GetDraft", request)
    session.printer.emit(response, lambda: version_detail(response.draft, response.build_log))


@draft_group.command("compile")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@common_options
@pass_session
def compile_(session: Session, app_id: str) -> None:
    """Build the draft (needed for rust before publishing)."""
    ref = session.app_ref(app_id)
    response = compile_draft(session, ref)
    session.printer.emit(response, lambda: version_detail(response.draft, response.build_log))


@draft_group.command("publish")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@common_options
@pass_session
def publish(session: Session, app_id: str) -> None:
    """Snapshot the draft into the next immutable version and make it active."""
    ref = session.app_ref(app_id)
    response = publish_draft(session, ref)
    session.printer.emit(
        response,
        lambda: (
            f"Published {ref} version {response.published_version}.\n\n" + app_detail(response.app)
        ),
    )
