"""The app lifecycle of seed 001 over gRPC against the real server."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from tests.support import SEED_HANDLER, SERVICE_PORTS, expect_error, python_source


def _create(stub, org: str, name: str = "greet", **fields) -> compute.CreateAppResponse:
    return stub.CreateApp(
        compute.CreateAppRequest(organization_name=org, name=name, runtime={"python": {}}, **fields)
    )


def test_whole_lifecycle(stub, org):
    created = _create(
        stub,
        org,
        description="A tiny greeting microservice",
        resource_tier=common.RESOURCE_TIER_SMALL,
    )
    assert created.app_id == f"{org}/greet"
    assert created.app.deployment_state == common.DEPLOYMENT_STATE_CREATED
    assert created.app.active_version == 0
    assert list(created.app.public_urls) == []

    saved = stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org, app_name="greet", code=python_source(SEED_HANDLER)
        )
    )
    assert saved.draft.version == 0
    assert saved.draft.code_hash == hashlib.sha256(SEED_HANDLER).hexdigest()
    assert saved.draft.code_kind == common.CODE_KIND_SDK
    assert saved.draft.deployment_mode == common.DEPLOYMENT_MODE_COMPILATION

    published = stub.PublishDraft(
        compute.PublishDraftRequest(organization_name=org, app_name="greet")
    )
    assert published.published_version == 1
    assert published.version.status == common.VERSION_STATUS_ACTIVE
    assert published.app.active_version == 1
    (url,) = published.app.public_urls
    assert url.startswith(f"http://greet-{org}.ignite.localhost")

    app = stub.GetApp(compute.GetAppRequest(organization_name=org, app_name="greet")).app
    assert app.id == f"{org}/greet"
    assert app.active_version == 1
    assert app.code_kind == common.CODE_KIND_SDK
    assert app.deployment_mode == common.DEPLOYMENT_MODE_COMPILATION
    assert app.deployment_state in (common.DEPLOYMENT_STATE_COLD, common.DEPLOYMENT_STATE_DEPLOYED)

    # A second publish of changed code: version 2 active, version 1 superseded.
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org, app_name="greet", code=python_source(SEED_HANDLER + b"\n# v2\n")
        )
    )
    assert (
        stub.PublishDraft(
            compute.PublishDraftRequest(organization_name=org, app_name="greet")
        ).published_version
        == 2
    )
    versions = stub.ListVersions(
        compute.ListVersionsRequest(organization_name=org, app_name="greet")
    ).versions
    assert [(v.version, v.status) for v in versions] == [
        (2, common.VERSION_STATUS_ACTIVE),
        (1, common.VERSION_STATUS_SUPERSEDED),
    ]
    v1 = stub.GetVersion(
        compute.GetVersionRequest(organization_name=org, app_name="greet", version=1)
    )
    assert v1.version.code_hash == hashlib.sha256(SEED_HANDLER).hexdigest()
    assert v1.version.runtime.WhichOneof("runtime") == "python"
    assert v1.version.created_at_ms > 0

    # Rollback re-points the active version; statuses follow.
    rolled = stub.RollbackApp(
        compute.RollbackAppRequest(organization_name=org, app_name="greet", version=1)
    )
    assert rolled.app.active_version == 1
    versions = stub.ListVersions(
        compute.ListVersionsRequest(organization_name=org, app_name="greet")
    ).versions
    assert [(v.version, v.status) for v in versions] == [
        (2, common.VERSION_STATUS_SUPERSEDED),
        (1, common.VERSION_STATUS_ACTIVE),
    ]
    # The immutable version 1 kept its code hash through all of it.
    assert versions[1].code_hash == hashlib.sha256(SEED_HANDLER).hexdigest()

    # Rolling back to a version that does not exist changes nothing.
    code, reason = expect_error(
        stub.RollbackApp,
        compute.RollbackAppRequest(organization_name=org, app_name="greet", version=7),
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "VERSION_NOT_FOUND")
    assert (
        stub.GetApp(
            compute.GetAppRequest(organization_name=org, app_name="greet")
        ).app.active_version
        == 1
    )

    # Delete removes everything and frees the name.
    stub.DeleteApp(compute.DeleteAppRequest(organization_name=org, app_name="greet"))
    code, reason = expect_error(
        stub.GetApp, compute.GetAppRequest(organization_name=org, app_name="greet")
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "APP_NOT_FOUND")
    again = _create(stub, org)
    assert again.app.active_version == 0
    code, _ = expect_error(
        stub.GetDraft, compute.GetDraftRequest(organization_name=org, app_name="greet")
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert (
        list(
            stub.ListVersions(
                compute.ListVersionsRequest(organization_name=org, app_name="greet")
            ).versions
        )
        == []
    )


def test_concurrent_publishes_take_consecutive_versions(stub, org):
    _create(stub, org, name="busy")
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org, app_name="busy", code=python_source(SEED_HANDLER)
        )
    )
    # Unforced, the same draft published at once twenty times is one version.
    request = compute.PublishDraftRequest(organization_name=org, app_name="busy")
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: stub.PublishDraft(request), range(20)))
    assert {r.published_version for r in results} == {1}
    assert sum(not r.unchanged for r in results) == 1
    # Forced, each publish makes a version: consecutive numbers, one active.
    request = compute.PublishDraftRequest(organization_name=org, app_name="busy", force=True)
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: stub.PublishDraft(request), range(19)))
    numbers = sorted([1] + [r.published_version for r in results])
    assert numbers == list(range(1, 21))
    versions = stub.ListVersions(
        compute.ListVersionsRequest(organization_name=org, app_name="busy", page_size=100)
    ).versions
    assert len(versions) == 20
    active = [v.version for v in versions if v.status == common.VERSION_STATUS_ACTIVE]
    assert len(active) == 1
    app = stub.GetApp(compute.GetAppRequest(organization_name=org, app_name="busy")).app
    assert app.active_version == active[0]


def test_publish_without_draft_is_a_failed_precondition(stub, org):
    _create(stub, org, name="empty")
    code, reason = expect_error(
        stub.PublishDraft, compute.PublishDraftRequest(organization_name=org, app_name="empty")
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_DRAFT")


def test_duplicate_app_already_exists(stub, org):
    _create(stub, org, name="twice", description="first")
    code, reason = expect_error(
        stub.CreateApp,
        compute.CreateAppRequest(organization_name=org, name="twice", description="second"),
    )
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "APP_ALREADY_EXISTS")
    app = stub.GetApp(compute.GetAppRequest(organization_name=org, app_name="twice")).app
    assert app.description == "first"


def test_list_apps_pages_by_name(stub, org):
    for name in ("c", "a", "b", "d", "e"):
        _create(stub, org, name=name)
    seen, token = [], ""
    while True:
        page = stub.ListApps(
            compute.ListAppsRequest(organization_name=org, page_size=2, page_token=token)
        )
        seen += [a.name for a in page.apps]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["a", "b", "c", "d", "e"]


def test_update_app_changes_only_masked_fields(stub, org):
    _create(stub, org, name="upd", description="before", env={"A": "1"})
    updated = stub.UpdateApp(
        compute.UpdateAppRequest(
            organization_name=org,
            app_name="upd",
            app=common.AppMeta(description="after", env={"B": "2"}, max_concurrency=3),
            update_mask={"paths": ["description", "maxConcurrency"]},
        )
    ).app
    assert updated.description == "after"
    assert updated.max_concurrency == 3
    assert dict(updated.env) == {"A": "1"}
    code, reason = expect_error(
        stub.UpdateApp,
        compute.UpdateAppRequest(
            organization_name=org,
            app_name="upd",
            app=common.AppMeta(name="renamed"),
            update_mask={"paths": ["name"]},
        ),
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "FIELD_NOT_UPDATABLE")


def test_an_image_whose_registry_does_not_answer_fails_the_publish_at_once(stub, org):
    _create(stub, org, name="img")
    # A port the platform may reach (its operator allowed it) that nothing
    # listens on: the registry cannot be reached.
    port = SERVICE_PORTS[2]
    draft = stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org,
            app_name="img",
            code=compute.CodeSource(
                image=compute.ImageSource(
                    prebuilt=compute.PrebuiltImage(image_ref=f"127.0.0.1:{port}/acme/greet:1")
                )
            ),
        )
    )
    assert draft.draft.code_kind == common.CODE_KIND_PREBUILT
    assert draft.draft.deployment_mode == common.DEPLOYMENT_MODE_IMAGE
    started = time.monotonic()
    code, reason = expect_error(
        stub.PublishDraft, compute.PublishDraftRequest(organization_name=org, app_name="img")
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REGISTRY_UNREACHABLE")
    assert time.monotonic() - started < 30
