"""``dodil ignite draft``: the mutable draft slot (version 0) of an app."""

from __future__ import annotations

import click
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.appspec import RUNTIMES, TARGETS
from dodil_cli.code import check_code_path
from dodil_cli.completion import complete_app_ids
from dodil_cli.lifecycle import (
    compile_draft,
    publish_draft,
    runtime_override,
    save_draft,
    wait_for_rollout,
)
from dodil_cli.options import common_options, pass_session, publish_options
from dodil_cli.rollout_spec import PublishSpec
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
@publish_options
@common_options
@pass_session
def publish(session: Session, app_id: str, publish: PublishSpec) -> None:
    """Snapshot the draft and the app's settings into the next immutable
    version; it becomes active once a pod of it is ready.

    A draft whose code and settings equal the active version's publishes
    nothing (--force does). --rollout canary:10,50,100 --step 60s moves the
    traffic in steps instead, rolling back by itself when the new version
    errs or slows down more than the old one (docs/rollouts.md).
    """
    ref = session.app_ref(app_id)
    response = publish_draft(session, ref, publish)
    if publish.wait and not response.unchanged:
        response.app.CopyFrom(wait_for_rollout(session, ref, response.published_version))
    verb = "Unchanged:" if response.unchanged else "Published"
    session.printer.emit(
        response,
        lambda: (
            f"{verb} {ref} version {response.published_version}.\n\n" + app_detail(response.app)
        ),
    )
