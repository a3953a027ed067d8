"""``dodil ignite app deploy``: create or update, save, compile, publish in one step."""

from __future__ import annotations

import click
import grpc
from dodil.ignite.v1 import ignite_common_pb2 as common

from dodil_cli.appinfo import INFO_FILE, load_app_info
from dodil_cli.appspec import (
    COMPILED_RUNTIMES,
    AppSpec,
    create_request,
    runtime_message,
    runtime_name,
    update_for,
)
from dodil_cli.code import check_code_path, code_root
from dodil_cli.completion import complete_app_ids
from dodil_cli.errors import ApiError, UsageError
from dodil_cli.ids import AppRef
from dodil_cli.lifecycle import compile_draft, get_app, publish_draft, save_draft, update_app
from dodil_cli.options import app_settings, common_options, pass_session
from dodil_cli.output import warn
from dodil_cli.session import Session
from dodil_cli.views import app_detail


@click.command("deploy")
@click.argument("name", metavar="[[ORG:]NAME]", required=False, shell_complete=complete_app_ids)
@click.option(
    "-c",
    "--code",
    "code",
    default=".",
    show_default=True,
    metavar="PATH",
    help="Project directory (or single source file) to deploy.",
)
@app_settings(create=True)
@common_options
@pass_session
def deploy(session: Session, name: str | None, code: str, spec: AppSpec) -> None:
    """Create or update an app from code, then build and publish it.

    Settings come from an optional info.yaml at the code root (name,
    description, runtime, mcp_enabled, input/output schema, env, ...);
    flags override it. The name may be left out when info.yaml has one.
    """
    path = check_code_path(code)
    info = load_app_info(code_root(path), warn=warn)
    if info is not None:
        spec = spec.over(info.spec)
    name = name or (info.name if info else None)
    if not name:
        raise UsageError(f"no app name: pass NAME or set 'name' in {INFO_FILE}")
    ref = session.app_ref(name)

    app = _ensure_app(session, ref, spec)
    runtime = (
        runtime_message(spec.runtime, spec.target, spec.runtime_version)
        if spec.runtime
        else app.runtime
    )
    save_draft(session, ref, path, runtime)
    if runtime_name(runtime) in COMPILED_RUNTIMES:
        compile_draft(session, ref)
    published = publish_draft(session, ref)
    session.printer.emit(
        published,
        lambda: (
            f"Deployed {ref} version {published.published_version}.\n\n" + app_detail(published.app)
        ),
    )


def _ensure_app(session: Session, ref: AppRef, spec: AppSpec) -> common.AppMeta:
    """The app after creating it, or after bringing its settings up to date."""
    try:
        current = get_app(session, ref)
    except ApiError as exc:
        if exc.code != grpc.StatusCode.NOT_FOUND:
            raise
        if not spec.runtime:
            raise UsageError(
                f"{ref} does not exist yet: give its runtime with --runtime or in {INFO_FILE}"
            ) from None
        with session.progress.step(f"Creating app {ref}"):
            created: common.AppMeta = session.client.call(
                "CreateApp", create_request(ref, spec)
            ).app
        return created
    change = update_for(spec, current)
    return update_app(session, ref, change) if change.paths else current
