"""Safe rollouts over gRPC and the HTTP edge against the real platform
(docs/rollouts.md): versions carry their settings and a rollback restores
them; traffic splits by weight, sticks to a key, and tags get URLs of their
own; splits change without a failed request; a version is ready when its
publish returns and goes back to zero afterwards; gradual rollouts roll back
a failing canary by themselves, complete a healthy one, and go on after a
server restart."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import requests
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher import LocalPlatform, temporary_platform
from tests.support import (
    HALF_FAILING,
    InvokeLoop,
    app_meta,
    deploy_python,
    expect_error,
    marked,
    python_source,
    read_logs,
    served_by,
    stub_for,
    unique_name,
    wait_rollout,
    wait_terminal,
)


def _save(stub, org: str, name: str, code: bytes) -> None:
    stub.SaveDraft(
        compute.SaveDraftRequest(organization_name=org, app_name=name, code=python_source(code))
    )


def _publish(stub, org: str, name: str, **fields) -> compute.PublishDraftResponse:
    return stub.PublishDraft(
        compute.PublishDraftRequest(organization_name=org, app_name=name, **fields), timeout=120
    )


def _versions(stub, org: str, name: str) -> dict[int, compute.AppVersionInfo]:
    listed = stub.ListVersions(compute.ListVersionsRequest(organization_name=org, app_name=name))
    return {v.version: v for v in listed.versions}


def _set_traffic(stub, org: str, name: str, **shares: int) -> common.AppMeta:
    traffic = [common.TrafficTarget(version=int(v[1:]), percent=p) for v, p in shares.items()]
    return stub.SetTraffic(
        compute.SetTrafficRequest(organization_name=org, app_name=name, traffic=traffic),
        timeout=120,
    ).app


def _two_versions(stub, org: str, name: str) -> None:
    """v1 answers marker "one", v2 (active) marker "two"."""
    deploy_python(stub, org, name, marked("one"))
    _save(stub, org, name, marked("two"))
    assert _publish(stub, org, name).published_version == 2


def _logged(stub, org: str, name: str, *words: str, limit: float = 15) -> list[str]:
    """The app's log lines, once one holds every word (logs are written in
    batches, a moment after the fact)."""
    deadline = time.monotonic() + limit
    while True:
        lines = [e.message for e in read_logs(stub, org, app_name=name)]
        if any(all(w in line for w in words) for line in lines):
            return lines
        assert time.monotonic() < deadline, f"no log line holds {words}: {lines[-20:]}"
        time.sleep(0.2)


def _app_url(platform: LocalPlatform, host_label: str, **headers: str) -> requests.Response:
    return requests.post(
        f"{platform.http_url}/",
        headers={"Host": f"{host_label}.{platform.apps_domain}", **headers},
        data=b"{}",
        timeout=60,
    )


def test_a_version_carries_its_settings_and_a_rollback_restores_them(stub, org):
    deploy_python(stub, org, "env", marked("one"), env={"GREETING": "first"})
    assert served_by(stub, org, "env")[1]["greeting"] == "first"

    # A settings change of a published app is a new version of the same code.
    updated = stub.UpdateApp(
        compute.UpdateAppRequest(
            organization_name=org,
            app_name="env",
            app=common.AppMeta(env={"GREETING": "second"}, max_concurrency=4),
            update_mask={"paths": ["env", "max_concurrency"]},
        ),
        timeout=120,
    ).app
    assert updated.active_version == 2
    assert served_by(stub, org, "env") == (2, {"marker": "one", "greeting": "second"})
    versions = _versions(stub, org, "env")
    assert versions[2].code_hash == versions[1].code_hash
    assert dict(versions[2].settings.env) == {"GREETING": "second"}
    assert versions[2].settings.max_concurrency == 4
    assert dict(versions[1].settings.env) == {"GREETING": "first"}
    assert versions[1].settings.max_concurrency == 0
    assert versions[2].message == "settings changed (from version 1)"
    assert versions[2].published_by == versions[1].published_by == "local"

    # Rolling back brings version 1's env back, inside the pod too.
    rolled = stub.RollbackApp(
        compute.RollbackAppRequest(organization_name=org, app_name="env", version=1), timeout=120
    ).app
    assert rolled.active_version == 1
    assert dict(rolled.env) == {"GREETING": "first"}
    assert rolled.max_concurrency == 0
    assert served_by(stub, org, "env") == (1, {"marker": "one", "greeting": "first"})

    # Settings equal to the active version's make no version; scaling
    # applies in place to the version serving.
    stub.UpdateApp(
        compute.UpdateAppRequest(
            organization_name=org,
            app_name="env",
            app=common.AppMeta(env={"GREETING": "first"}, scaling={"max_replicas": 3}),
            update_mask={"paths": ["env", "scaling"]},
        ),
        timeout=120,
    )
    versions = _versions(stub, org, "env")
    assert sorted(versions) == [1, 2]
    assert versions[1].settings.scaling.max_replicas == 3
    assert versions[2].settings.scaling.max_replicas == 10


def test_publishing_an_unchanged_draft_makes_no_version_unless_forced(stub, org):
    deploy_python(stub, org, "same", marked("one"))
    again = _publish(stub, org, "same", message="nothing new")
    assert again.unchanged and again.published_version == 1
    assert sorted(_versions(stub, org, "same")) == [1]
    forced = _publish(stub, org, "same", force=True, message="forced")
    assert not forced.unchanged and forced.published_version == 2
    assert forced.version.message == "forced"
    assert forced.version.status == common.VERSION_STATUS_ACTIVE
    # Settings given with the publish go into its one version.
    _save(stub, org, "same", marked("two"))
    published = stub.PublishDraft(
        compute.PublishDraftRequest(
            organization_name=org,
            app_name="same",
            app=common.AppMeta(env={"GREETING": "with it"}, description="two"),
            update_mask={"paths": ["env", "description"]},
        ),
        timeout=120,
    )
    assert published.published_version == 3
    assert dict(published.version.settings.env) == {"GREETING": "with it"}
    assert published.app.description == "two"
    assert served_by(stub, org, "same") == (3, {"marker": "two", "greeting": "with it"})
    assert sorted(_versions(stub, org, "same")) == [1, 2, 3]


def test_a_90_10_split_routes_by_weight_and_a_sticky_key_stays(stub, org, platform):
    _two_versions(stub, org, "split")
    app = _set_traffic(stub, org, "split", v1=90, v2=10)
    # The largest share is the active version.
    assert app.active_version == 1
    assert [(t.version, t.percent) for t in app.traffic] == [(1, 90), (2, 10)]
    shares = {v.version: v.traffic_percent for v in _versions(stub, org, "split").values()}
    assert shares == {1: 90, 2: 10}

    def one(_: int) -> tuple[int, str]:
        version, answer = served_by(stub, org, "split")
        return version, answer["marker"]

    with ThreadPoolExecutor(4) as pool:
        served = Counter(pool.map(one, range(2000)))
    # The head says which version served, and it is the version that answered.
    assert set(served) <= {(1, "one"), (2, "two")}
    share = served[(2, "two")] / 2000
    print(f"\n90/10 split over 2,000 invokes: v2 served {share:.1%} (goal 10 ± 2 %)")
    assert 0.08 <= share <= 0.12, served

    # A sticky key always reaches the same version, as the field or the header.
    for key in ("user-1", "user-2", "user-3", "user-4"):
        seen = {served_by(stub, org, "split", sticky_key=key)[0] for _ in range(15)}
        header = compute.InvokeRequest(
            organization_name=org,
            app_name="split",
            body=b"{}",
            http={"headers": {"X-Ignite-Sticky-Key": key}},
        )
        heads = [f.head.version for f in stub.Invoke(header, timeout=60) if f.HasField("head")]
        assert len(seen) == 1 and heads == list(seen), (key, seen, heads)

    # The app URL routes by the same weights and says who served.
    label = f"split-{org}"
    versions = Counter(_app_url(platform, label).headers["X-Ignite-Version"] for _ in range(300))
    assert set(versions) == {"1", "2"} and 6 <= versions["2"] <= 66, versions


def test_tags_and_split_changes_never_fail_a_request(stub, org, platform):
    _two_versions(stub, org, "tags")
    for version, tag in ((1, "stable"), (2, "canary")):
        stub.TagVersion(
            compute.TagVersionRequest(
                organization_name=org, app_name="tags", tag=tag, version=version
            )
        )
    with InvokeLoop(stub, org, "tags") as loop:
        loop.wait_for(50)
        _set_traffic(stub, org, "tags", v1=90, v2=10)
        loop.wait_for(200)
        _set_traffic(stub, org, "tags", v1=50, v2=50)
        loop.wait_for(200)
        # Both URLs of tags reach their version whatever the split.
        for _ in range(20):
            for label, version, marker in (("stable", "1", "one"), ("canary", "2", "two")):
                answer = _app_url(platform, f"{label}---tags-{org}")
                assert answer.status_code == 200, answer.text
                assert answer.headers["X-Ignite-Version"] == version
                assert answer.json()["marker"] == marker
        # Removing the split: one version (the active one, 1: it kept the tie).
        cleared = stub.SetTraffic(
            compute.SetTrafficRequest(organization_name=org, app_name="tags"), timeout=120
        ).app
        assert cleared.active_version == 1 and list(cleared.traffic) == []
        loop.wait_for(200)
    assert loop.failures == []
    assert loop.served(1) > 0 and loop.served(2) > 0
    assert {served_by(stub, org, "tags")[0] for _ in range(100)} == {1}
    assert served_by(stub, org, "tags", tag="canary")[0] == 2

    missing = compute.InvokeRequest(organization_name=org, app_name="tags", tag="nope")
    assert expect_error(lambda r: list(stub.Invoke(r)), missing) == (
        grpc.StatusCode.NOT_FOUND,
        "TAG_NOT_FOUND",
    )
    answer = _app_url(platform, f"nope---tags-{org}")
    assert answer.status_code == 404 and "TAG_NOT_FOUND" in answer.text
    # Untagged, its URL stops answering.
    stub.UntagVersion(
        compute.UntagVersionRequest(organization_name=org, app_name="tags", tag="canary")
    )
    assert _app_url(platform, f"canary---tags-{org}").status_code == 404


def test_an_async_invocation_by_tag_runs_the_version_the_tag_names(stub, org):
    _two_versions(stub, org, "later")
    stub.TagVersion(
        compute.TagVersionRequest(organization_name=org, app_name="later", tag="old", version=1)
    )
    submitted = stub.InvokeAsync(
        compute.InvokeAsyncRequest(organization_name=org, app_name="later", body=b"{}", tag="old")
    )
    done = wait_terminal(stub, org, [submitted.execution_id])[submitted.execution_id]
    assert done.status == common.EXECUTION_STATUS_COMPLETED
    assert done.function_version == 1 and json.loads(done.result)["marker"] == "one"

    both = compute.InvokeAsyncRequest(
        organization_name=org, app_name="later", body=b"{}", tag="old", version=2
    )
    assert expect_error(stub.InvokeAsync, both) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "CONFLICTING_TARGET",
    )
    missing = compute.InvokeAsyncRequest(
        organization_name=org, app_name="later", body=b"{}", tag="nope"
    )
    assert expect_error(stub.InvokeAsync, missing) == (grpc.StatusCode.NOT_FOUND, "TAG_NOT_FOUND")


def test_bad_traffic_tags_and_policies_are_refused_and_change_nothing(stub, org):
    _two_versions(stub, org, "bad")

    def traffic(*pairs: tuple[int, int]) -> compute.SetTrafficRequest:
        return compute.SetTrafficRequest(
            organization_name=org,
            app_name="bad",
            traffic=[common.TrafficTarget(version=v, percent=p) for v, p in pairs],
        )

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert expect_error(stub.SetTraffic, traffic((1, 50), (2, 40))) == (invalid, "TRAFFIC_NOT_100")
    assert expect_error(stub.SetTraffic, traffic((1, 50), (1, 50))) == (
        invalid,
        "DUPLICATE_VERSION",
    )
    assert expect_error(stub.SetTraffic, traffic((0, 100))) == (invalid, "INVALID_VERSION")
    assert expect_error(stub.SetTraffic, traffic((1, 50), (9, 50))) == (
        grpc.StatusCode.NOT_FOUND,
        "VERSION_NOT_FOUND",
    )
    for tag, reason in (
        ("Canary", "INVALID_TAG"),
        ("a--b", "INVALID_TAG"),
        ("x" * 60, "TAG_TOO_LONG_FOR_URL"),
    ):
        request = compute.TagVersionRequest(
            organization_name=org, app_name="bad", tag=tag, version=1
        )
        assert expect_error(stub.TagVersion, request) == (invalid, reason)
    for steps, reason in (([], "ROLLOUT_STEPS_REQUIRED"), ([50, 10], "INVALID_ROLLOUT_STEPS")):
        request = compute.PublishDraftRequest(
            organization_name=org, app_name="bad", force=True, rollout={"steps": steps}
        )
        assert expect_error(stub.PublishDraft, request) == (invalid, reason)
    for n in range(20):
        stub.TagVersion(
            compute.TagVersionRequest(organization_name=org, app_name="bad", tag=f"t{n}", version=1)
        )
    request = compute.TagVersionRequest(organization_name=org, app_name="bad", tag="t20", version=1)
    assert expect_error(stub.TagVersion, request) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "TOO_MANY_TAGS",
    )
    app = app_meta(stub, org, "bad")
    assert app.active_version == 2 and list(app.traffic) == [] and len(app.tags) == 20
    assert sorted(_versions(stub, org, "bad")) == [1, 2]


def test_a_published_version_serves_at_once_and_goes_back_to_zero(stub, org):
    deploy_python(stub, org, "zero", marked("one"), scaling={"scaledown_period_secs": 2})
    # The publish returned once a pod was ready: it is there without a request.
    assert app_meta(stub, org, "zero").ready_replicas >= 1
    _logged(stub, org, "zero", "version 1 is ready")
    deadline = time.monotonic() + 30
    while app_meta(stub, org, "zero").ready_replicas:
        assert time.monotonic() < deadline, "the readiness pod never went away"
        time.sleep(0.5)
    assert app_meta(stub, org, "zero").deployment_state == common.DEPLOYMENT_STATE_COLD


def test_a_failing_canary_rolls_back_by_itself_and_a_healthy_one_completes(stub, org):
    deploy_python(stub, org, "canary", marked("one"))
    policy = common.RolloutPolicy(steps=[10, 50, 100], step_secs=3, max_p95_increase_pct=1000)
    with InvokeLoop(stub, org, "canary") as loop:
        loop.wait_for(20)
        _save(stub, org, "canary", HALF_FAILING)
        started = _publish(stub, org, "canary", rollout=policy)
        assert started.published_version == 2
        assert started.version.status == common.VERSION_STATUS_READY
        assert started.app.active_version == 1
        assert [(t.version, t.percent) for t in started.app.traffic] == [(1, 90), (2, 10)]
        assert started.app.rollout.state == common.ROLLOUT_STATE_RUNNING
        rollout = wait_rollout(stub, org, "canary")
        failed = loop.served(2)
    assert rollout.state == common.ROLLOUT_STATE_ROLLED_BACK
    # Within two steps: at the end of the first (10 %) or second (50 %).
    assert rollout.decision.startswith(("rolled back at step 1/3", "rolled back at step 2/3"))
    assert "error rate" in rollout.decision and "v2 " in rollout.decision
    assert failed > 0 and loop.errors == []
    app = app_meta(stub, org, "canary")
    assert app.active_version == 1 and list(app.traffic) == []
    _logged(stub, org, "canary", "rolled back", "error rate")

    # A healthy canary goes all the way, through every step.
    with InvokeLoop(stub, org, "canary") as loop:
        loop.wait_for(20)
        _save(stub, org, "canary", marked("three"))
        assert _publish(stub, org, "canary", rollout=policy).published_version == 3
        rollout = wait_rollout(stub, org, "canary")
    assert rollout.state == common.ROLLOUT_STATE_COMPLETED, rollout.decision
    assert rollout.decision.startswith("completed after step 2/3 (50%)")
    assert loop.failures == [] and loop.served(3) > 0
    app = app_meta(stub, org, "canary")
    assert app.active_version == 3 and list(app.traffic) == []
    versions = _versions(stub, org, "canary")
    assert versions[3].status == common.VERSION_STATUS_ACTIVE
    assert versions[2].status == common.VERSION_STATUS_READY


def test_a_rollout_goes_on_after_the_server_restarts():
    server_args = ("--readiness-timeout-secs", "3")
    with temporary_platform(gateway_port=None, server_args=server_args) as platform:
        stub = stub_for(platform.grpc_target)
        org = unique_name("org")
        deploy_python(stub, org, "steady", marked("one"))
        _save(stub, org, "steady", marked("two"))
        policy = common.RolloutPolicy(steps=[50, 100], step_secs=4)
        assert _publish(stub, org, "steady", rollout=policy).app.rollout.step == 0
        platform.restart_server()
        stub = stub_for(platform.grpc_target)
        app = app_meta(stub, org, "steady")
        assert app.rollout.state == common.ROLLOUT_STATE_RUNNING
        assert [(t.version, t.percent) for t in app.traffic] == [(1, 50), (2, 50)]
        rollout = wait_rollout(stub, org, "steady", limit=60)
        assert rollout.state == common.ROLLOUT_STATE_COMPLETED, rollout.decision
        assert app_meta(stub, org, "steady").active_version == 2
        _logged(stub, org, "steady", "taken over by this server")

        # A server that dies while a version is being made ready leaves it
        # STARTING; the app's next publish, once the readiness bound (and
        # its slack) is past, marks it FAILED.
        _save(stub, org, "steady", SLOW_IMPORT.replace(b"sleep(4)", b"sleep(60)"))
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(_publish, stub, org, "steady")
            time.sleep(1.0)
            platform.kill_server()
            with pytest.raises(grpc.RpcError):
                pending.result(timeout=60)
        platform.restart_server()
        stub = stub_for(platform.grpc_target)
        assert _versions(stub, org, "steady")[3].status == common.VERSION_STATUS_STARTING
        assert app_meta(stub, org, "steady").active_version == 2
        time.sleep(3 + 10 + 1)
        _save(stub, org, "steady", marked("four"))
        assert _publish(stub, org, "steady").published_version == 4
        versions = _versions(stub, org, "steady")
        assert versions[3].status == common.VERSION_STATUS_FAILED
        assert "the server stopped" in versions[3].error
        assert versions[4].status == common.VERSION_STATUS_ACTIVE


SLOW_IMPORT = b"""import time

time.sleep(4)

def handler(payload, ctx):
    return {"slow": True}
"""


def test_one_organizations_slow_publish_holds_up_no_other(stub, org):
    other = unique_name("org")
    deploy_python(stub, other, "quick", marked("one"))
    deploy_python(stub, org, "slow", marked("one"))
    _save(stub, org, "slow", SLOW_IMPORT)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_publish, stub, org, "slow")
        time.sleep(0.5)
        # Meanwhile the other organization publishes and is served at once.
        _save(stub, other, "quick", marked("two"))
        assert _publish(stub, other, "quick").published_version == 2
        assert served_by(stub, other, "quick")[1]["marker"] == "two"
        assert not slow.done()
        assert slow.result(timeout=60).published_version == 2
    # Neither sees the other's versions or traffic.
    assert expect_error(
        stub.GetApp, compute.GetAppRequest(organization_name=other, app_name="slow")
    ) == (grpc.StatusCode.NOT_FOUND, "APP_NOT_FOUND")


@pytest.mark.parametrize("name", ["a---b"])
def test_app_names_keep_clear_of_tag_urls(stub, org, name):
    request = compute.CreateAppRequest(organization_name=org, name=name, runtime={"python": {}})
    assert expect_error(stub.CreateApp, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_NAME",
    )
