"""``dodil ignite app deploy``: create or update, save, build, publish in one step.

The order keeps a failed deploy from changing anything that serves: the code
is saved into the draft slot (with the runtime it is built for) and built
first; only a draft that built is published, with the changed settings in
the same PublishDraft, so code and settings make one version that takes
traffic once it is ready; if it never is, the app keeps its settings and
its version. Code and settings identical to the active version's publish
nothing: the active version stays, as a Lambda publish of unchanged code
does (--force publishes anyway).
"""

from __future__ import annotations

import dataclasses

import click
import grpc
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.appinfo import INFO_FILE, read_app_info
from dodil_cli.appspec import (
    AppSpec,
    Update,
    create_request,
    runtime_message,
    update_for,
)
from dodil_cli.code import check_code_path
from dodil_cli.commands.invoke import invoke_once
from dodil_cli.completion import complete_app_ids
from dodil_cli.errors import ApiError, AppFailedError, UsageError
from dodil_cli.ids import AppRef
from dodil_cli.image_source import ImageOptions, image_options, image_upload
from dodil_cli.lifecycle import (
    compile_draft,
    get_app,
    publish_draft,
    save_draft,
    save_image_draft,
    wait_for_rollout,
)
from dodil_cli.options import app_settings, common_options, pass_session, publish_options
from dodil_cli.output import info, warn
from dodil_cli.rollout_spec import PublishSpec
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
    help="Project directory, single source file, or .zip / .tar.gz archive to deploy.",
)
@click.option(
    "--smoke",
    is_flag=True,
    help="After publishing, invoke info.yaml's test_input; fail if the app errors.",
)
@image_options
@app_settings(create=True, unset_env=True)
@publish_options
@common_options
@pass_session
def deploy(
    session: Session,
    name: str | None,
    code: str,
    smoke: bool,
    spec: AppSpec,
    image: ImageOptions,
    publish: PublishSpec,
) -> None:
    """Create or update an app from code, then build and publish it.

    Settings come from an optional info.yaml at the code root (name,
    description, runtime, mcp_enabled, input/output schemas, env names,
    test_input, ...); flags override it. The name may be left out when
    info.yaml has one. A failed build changes nothing; unchanged code and
    settings publish nothing. Prints the app's URLs when done.

    Env: the variables given (--env, info.yaml's env) are the app's whole
    env, so one left out is removed (a name info.yaml lists with no value
    now keeps the value it has); with none given the env stays as it is;
    --unset-env K removes one.

    Container images: --dockerfile-path builds the --code folder's
    Dockerfile, --git-url a repository's, --image runs a prebuilt image
    (docs/runtimes/images.md).

    The new version takes traffic once a pod of it is ready; if none is
    (a Python import error, a binary that exits, a health check that never
    answers) the deploy fails with the reason and the old version keeps
    serving. --rollout canary:10,50,100 --step 60s moves traffic in steps
    and rolls back by itself (docs/rollouts.md).
    """
    image.check()
    path = check_code_path(code)
    app_info = read_app_info(path, warn)
    if app_info is not None:
        spec = spec.over(app_info.spec)
    # What the deploy declares (--env, info.yaml's env) is the whole env.
    spec = dataclasses.replace(spec, replace_env=spec.env is not None)
    name = name or (app_info.name if app_info else None)
    if not name:
        raise UsageError(f"no app name: pass NAME or set 'name' in {INFO_FILE}")
    test_input = app_info.test_input if app_info else None
    if smoke and test_input is None:
        raise UsageError(f"--smoke sends {INFO_FILE}'s test_input, and there is none")
    ref = session.app_ref(name)

    existing = _existing_app(session, ref)
    if existing is None:
        app = _create_app(session, ref, spec, image_app=image.given)
        runtime = app.runtime
        change = Update()
    else:
        app = existing
        runtime = (
            runtime_message(spec.runtime, spec.target, spec.runtime_version)
            if spec.runtime
            else app.runtime
        )
        change = update_for(spec, app)
    if image.given:
        draft = save_image_draft(session, ref, image_upload(image, path))
        # The image is built (or its tag resolved) first: whether anything
        # changed depends on the digest it comes to.
        draft = _build(session, ref, created=existing is None).draft
    else:
        draft = save_draft(session, ref, path, runtime)

    active = _active_version(session, ref, app)
    if (
        active is not None
        and not publish.force
        and not change.paths
        and active.code_hash == draft.code_hash
        and active.runtime == draft.runtime
        and active.image_ref == draft.image_ref
    ):
        info(f"{ref}: code and settings unchanged, version {active.version} stays active")
        published = compute.PublishDraftResponse(
            published_version=active.version, version=active, app=app
        )
    else:
        # Build before anything about the app changes: a draft that fails
        # leaves the app reporting and serving what it did before, and
        # fails as a build (exit 12), on a first deploy as on any other.
        if not image.given:
            _build(session, ref, created=existing is None)
        published = publish_draft(session, ref, publish, change)
        if publish.wait and not published.unchanged:
            published.app.CopyFrom(wait_for_rollout(session, ref, published.published_version))
    _print_deployed(session, ref, published)
    if smoke:
        assert test_input is not None
        _smoke(session, ref, test_input)


def _build(session: Session, ref: AppRef, *, created: bool) -> compute.CompileDraftResponse:
    """Build the draft; on a failed build of an app this deploy created,
    say that the app is kept and why (AppFailedError, exit 12, follows)."""
    try:
        return compile_draft(session, ref)
    except AppFailedError:
        if created:
            warn(
                f"{ref} was created by this deploy and is kept, with no version, so its "
                f"build log stays readable (dodil ignite draft get {ref}); deploy again "
                f"once fixed, or remove it with dodil ignite app delete {ref}"
            )
        raise


def _existing_app(session: Session, ref: AppRef) -> common.AppMeta | None:
    try:
        return get_app(session, ref)
    except ApiError as exc:
        if exc.code != grpc.StatusCode.NOT_FOUND:
            raise
        return None


def _create_app(session: Session, ref: AppRef, spec: AppSpec, *, image_app: bool) -> common.AppMeta:
    if not spec.runtime and not image_app:
        raise UsageError(
            f"{ref} does not exist yet: give its runtime with --runtime or in {INFO_FILE}"
        )
    with session.progress.step(f"Creating app {ref}"):
        created: common.AppMeta = session.client.call(
            "CreateApp", create_request(ref, spec, image_app=image_app)
        ).app
    return created


def _active_version(
    session: Session, ref: AppRef, app: common.AppMeta
) -> compute.AppVersionInfo | None:
    if not app.active_version:
        return None
    request = compute.GetVersionRequest(
        organization_name=ref.organization, app_name=ref.name, version=app.active_version
    )
    version: compute.AppVersionInfo = session.client.call("GetVersion", request).version
    return version


def _print_deployed(session: Session, ref: AppRef, published: compute.PublishDraftResponse) -> None:
    app = published.app
    urls = "".join(f"\nURL: {url}" for url in app.public_urls)
    session.printer.emit(
        published,
        lambda: (
            f"Deployed {ref} version {published.published_version}.{urls}\n\n"
            + app_detail(app, show_env=session.show_env)
        ),
    )
    if session.printer.structured and app.public_urls:
        info("URL: " + ", ".join(app.public_urls))


def _smoke(session: Session, ref: AppRef, payload: bytes) -> None:
    """Invoke the new version with test_input; AppFailedError if it errors."""
    with session.progress.step(f"Smoke test of {ref} with {INFO_FILE}'s test_input"):
        status, body = invoke_once(session, ref, payload)
    if status >= 400:
        excerpt = body[:300].decode("utf-8", errors="replace")
        raise AppFailedError(f"smoke test of {ref} failed: HTTP {status}: {excerpt}")
    info(f"Smoke test passed: HTTP {status}")
