"""The steps of an app's lifecycle as API calls, shared by the commands.

``draft save``/``compile``/``publish`` run one step each; ``app deploy`` runs
them in a row. Each step reports progress on stderr and turns a failed build
into one clear error.
"""

from __future__ import annotations

import time
from pathlib import Path

from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.appspec import Update, runtime_message, runtime_name
from dodil_cli.code import Upload, build_upload
from dodil_cli.errors import AppFailedError, UsageError
from dodil_cli.ids import AppRef
from dodil_cli.output import info, warn
from dodil_cli.rollout_spec import PublishSpec
from dodil_cli.session import Session

#: Compiling a Rust project from a cold cache takes minutes.
BUILD_TIMEOUT_SECONDS = 30 * 60.0


def get_app(session: Session, ref: AppRef) -> common.AppMeta:
    """Fetch one app."""
    request = compute.GetAppRequest(organization_name=ref.organization, app_name=ref.name)
    app: common.AppMeta = session.client.call("GetApp", request).app
    return app


def update_app(session: Session, ref: AppRef, change: Update) -> common.AppMeta:
    """Send one UpdateApp with the change's fields and mask."""
    request = compute.UpdateAppRequest(
        organization_name=ref.organization,
        app_name=ref.name,
        app=change.app,
        update_mask=change.mask(),
    )
    with session.progress.step(f"Updating {ref} ({', '.join(change.paths)})"):
        app: common.AppMeta = session.client.call("UpdateApp", request).app
    return app


def save_draft(
    session: Session,
    ref: AppRef,
    path: Path,
    runtime: common.Runtime | None = None,
) -> compute.AppVersionInfo:
    """Upload a file or directory into the app's draft slot.

    Without ``runtime`` the app's own runtime is used.
    """
    if runtime is None or not runtime_name(runtime):
        runtime = get_app(session, ref).runtime
        if not runtime_name(runtime):
            raise UsageError(f"{ref} has no runtime: pass --runtime python|go|rust|deno")
    upload = build_upload(path, runtime, warn)
    request = compute.SaveDraftRequest(
        organization_name=ref.organization, app_name=ref.name, code=upload.source
    )
    with session.progress.step(f"Saving draft of {ref} ({upload.summary})"):
        draft: compute.AppVersionInfo = session.client.call("SaveDraft", request).draft
    return draft


def save_image_draft(session: Session, ref: AppRef, upload: Upload) -> compute.AppVersionInfo:
    """Save an image source (see dodil_cli/image_source.py) as the draft."""
    request = compute.SaveDraftRequest(
        organization_name=ref.organization, app_name=ref.name, code=upload.source
    )
    with session.progress.step(f"Saving draft of {ref} ({upload.summary})"):
        draft: compute.AppVersionInfo = session.client.call("SaveDraft", request).draft
    return draft


def compile_draft(session: Session, ref: AppRef) -> compute.CompileDraftResponse:
    """Build the draft; raise AppFailedError (with the build log) if it fails."""
    request = compute.CompileDraftRequest(organization_name=ref.organization, app_name=ref.name)
    with session.progress.step(f"Compiling draft of {ref}"):
        response: compute.CompileDraftResponse = session.client.call(
            "CompileDraft", request, timeout=BUILD_TIMEOUT_SECONDS
        )
    if response.draft.status == common.VERSION_STATUS_FAILED:
        raise AppFailedError(
            f"compile of {ref} failed: {response.draft.error or 'see the build log'}",
            details=response.build_log.splitlines(),
        )
    return response


def publish_draft(
    session: Session,
    ref: AppRef,
    spec: PublishSpec | None = None,
    change: Update | None = None,
) -> compute.PublishDraftResponse:
    """Publish the draft as the next version: active once it is ready, or
    with a rollout, taking traffic in steps. ``change``'s settings go with
    it (one version). Says so when nothing changed."""
    spec = spec or PublishSpec()
    request = compute.PublishDraftRequest(
        organization_name=ref.organization,
        app_name=ref.name,
        force=spec.force,
        message=spec.message,
    )
    policy = spec.policy()
    if policy is not None:
        request.rollout.CopyFrom(policy)
    if change is not None and change.paths:
        request.app.CopyFrom(change.app)
        request.update_mask.CopyFrom(change.mask())
    what = "with a rollout" if policy is not None else "(it takes traffic once ready)"
    if change is not None and change.paths:
        what = f"with new {', '.join(change.paths)} {what}"
    with session.progress.step(f"Publishing {ref} {what}"):
        response: compute.PublishDraftResponse = session.client.call(
            "PublishDraft", request, timeout=BUILD_TIMEOUT_SECONDS
        )
    if response.unchanged:
        info(
            f"{ref}: code and settings unchanged, version {response.published_version} stays"
            " active (--force publishes anyway)"
        )
    elif policy is not None and response.app.rollout.to_version == response.published_version:
        rollout = response.app.rollout
        info(
            f"Rollout of version {rollout.to_version} started: "
            + " → ".join(f"{p}%" for p in rollout.policy.steps)
            + f", {rollout.policy.step_secs}s a step; follow it with"
            f" 'dodil ignite traffic get {ref}'"
        )
    return response


#: Slack over a rollout's own length for --wait: steps end on the server's
#: tick, and a server that restarts starts its step again.
ROLLOUT_WAIT_SLACK_SECS = 120.0


def wait_for_rollout(session: Session, ref: AppRef, version: int) -> common.AppMeta:
    """Follow ``version``'s rollout until it ends, printing each decision;
    AppFailedError when it rolled back or was cancelled."""
    app = get_app(session, ref)
    rollout = app.rollout
    if rollout.to_version != version:
        return app
    limit = len(rollout.policy.steps) * rollout.policy.step_secs + ROLLOUT_WAIT_SLACK_SECS
    deadline = time.monotonic() + limit
    seen = ""
    while True:
        rollout = app.rollout
        if rollout.decision != seen:
            seen = rollout.decision
            info(f"rollout: {seen}")
        if rollout.state != common.ROLLOUT_STATE_RUNNING:
            break
        if time.monotonic() > deadline:
            raise AppFailedError(f"the rollout of {ref} version {version} is still running")
        time.sleep(1.0)
        app = get_app(session, ref)
    if rollout.state != common.ROLLOUT_STATE_COMPLETED:
        state = common.RolloutState.Name(rollout.state).removeprefix("ROLLOUT_STATE_").lower()
        raise AppFailedError(
            f"the rollout of {ref} version {version} was {state.replace('_', ' ')}:"
            f" {rollout.decision}"
        )
    return app


def runtime_override(
    name: str | None, target: str | None, version: str | None
) -> common.Runtime | None:
    """A Runtime from --runtime/--rust-target/--runtime-version, or None."""
    return runtime_message(name, target, version) if name else None
