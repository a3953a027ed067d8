"""Safe rollouts on a real cluster (the test bed), as tests/api/test_rollouts.py
shows them on local pods (docs/rollouts.md): a version whose Python module
does not import never takes traffic and the failure names its file:line
while the old version serves every request; a rollback restores the env the
pod reads; a 90/10 split routes by weight and tags reach their version; a
failing canary rolls back by itself and a healthy one completes."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from tests.backends.kubernetes.conftest import Kubectl
from tests.support import (
    HALF_FAILING,
    InvokeLoop,
    app_meta,
    error_info,
    marked,
    python_archive,
    served_by,
    tar_gz,
    wait_rollout,
)

HANDLER = b"""from lib import helper


def handler(payload, ctx):
    return {"value": helper.VALUE}
"""


def _save(stub, org: str, name: str, code: compute.CodeSource) -> None:
    stub.SaveDraft(compute.SaveDraftRequest(organization_name=org, app_name=name, code=code))


def _source(code: bytes) -> compute.CodeSource:
    return compute.CodeSource(
        compile=compute.CompileSource(runtime={"python": {}}, source_code=code)
    )


def _publish(stub, org: str, name: str, **fields) -> compute.PublishDraftResponse:
    return stub.PublishDraft(
        compute.PublishDraftRequest(organization_name=org, app_name=name, **fields), timeout=300
    )


def _create(stub, org: str, name: str, **fields) -> None:
    stub.CreateApp(
        compute.CreateAppRequest(organization_name=org, name=name, runtime={"python": {}}, **fields)
    )


def _project(helper: bytes) -> compute.CodeSource:
    return python_archive(
        tar_gz({"handler.py": HANDLER, "lib/__init__.py": b"", "lib/helper.py": helper})
    )


def test_a_broken_import_never_takes_traffic_on_the_cluster(k8s_stub, org: str) -> None:
    _create(k8s_stub, org, "broken")
    _save(k8s_stub, org, "broken", _project(b"VALUE = 1\n"))
    _publish(k8s_stub, org, "broken")
    with InvokeLoop(k8s_stub, org, "broken") as loop:
        loop.wait_for(20, timeout=120)
        _save(k8s_stub, org, "broken", _project(b"VALUE = 2\n\ndef broken(:\n    pass\n"))
        try:
            _publish(k8s_stub, org, "broken")
            raise AssertionError("a version whose import fails was published")
        except grpc.RpcError as err:
            info = error_info(err)
            assert info is not None and info.reason == "VERSION_NOT_READY", err
            details = err.details() or ""  # type: ignore[attr-defined]
        loop.wait_for(20, timeout=120)
    assert "lib/helper.py:3: SyntaxError" in details, details
    assert "def broken(:" in details and "version 1 keeps serving" in details
    assert loop.failures == [] and loop.served(1) >= 40
    assert app_meta(k8s_stub, org, "broken").active_version == 1


def test_a_rollback_restores_the_env_the_pod_reads(k8s_stub, org: str) -> None:
    _create(k8s_stub, org, "env", env={"GREETING": "first"})
    _save(k8s_stub, org, "env", _source(marked("one")))
    _publish(k8s_stub, org, "env")
    assert served_by(k8s_stub, org, "env") == (1, {"marker": "one", "greeting": "first"})
    k8s_stub.UpdateApp(
        compute.UpdateAppRequest(
            organization_name=org,
            app_name="env",
            app=common.AppMeta(env={"GREETING": "second"}),
            update_mask={"paths": ["env"]},
        ),
        timeout=300,
    )
    assert served_by(k8s_stub, org, "env") == (2, {"marker": "one", "greeting": "second"})
    k8s_stub.RollbackApp(
        compute.RollbackAppRequest(organization_name=org, app_name="env", version=1), timeout=300
    )
    assert served_by(k8s_stub, org, "env") == (1, {"marker": "one", "greeting": "first"})
    assert dict(app_meta(k8s_stub, org, "env").env) == {"GREETING": "first"}


def test_a_90_10_split_and_tags_on_the_cluster(k8s_stub, org: str, kubectl: Kubectl) -> None:
    _create(k8s_stub, org, "split")
    for marker in ("one", "two"):
        _save(k8s_stub, org, "split", _source(marked(marker)))
        _publish(k8s_stub, org, "split")
    k8s_stub.TagVersion(
        compute.TagVersionRequest(organization_name=org, app_name="split", tag="canary", version=2)
    )
    with InvokeLoop(k8s_stub, org, "split") as loop:
        loop.wait_for(20, timeout=120)
        k8s_stub.SetTraffic(
            compute.SetTrafficRequest(
                organization_name=org,
                app_name="split",
                traffic=[{"version": 1, "percent": 90}, {"version": 2, "percent": 10}],
            ),
            timeout=300,
        )

        def one(_: int) -> tuple[int, str]:
            version, answer = served_by(k8s_stub, org, "split")
            return version, answer["marker"]

        with ThreadPoolExecutor(4) as pool:
            served = Counter(pool.map(one, range(2000)))
        assert set(served) <= {(1, "one"), (2, "two")}
        assert 0.08 <= served[(2, "two")] / 2000 <= 0.12, served
        assert {served_by(k8s_stub, org, "split", tag="canary")[0] for _ in range(20)} == {2}
        k8s_stub.SetTraffic(
            compute.SetTrafficRequest(organization_name=org, app_name="split"), timeout=300
        )
        loop.wait_for(50, timeout=120)
    assert loop.failures == []
    assert {served_by(k8s_stub, org, "split")[0] for _ in range(50)} == {1}
    # Both versions ran as Deployments of their own on the cluster.
    deployments = kubectl.get("deployments", f"ignite.dodil.io/organization={org}")
    assert {d["metadata"]["labels"]["ignite.dodil.io/version"] for d in deployments} >= {"1", "2"}


def test_canaries_on_the_cluster_roll_back_or_complete_by_themselves(k8s_stub, org: str) -> None:
    _create(k8s_stub, org, "canary")
    _save(k8s_stub, org, "canary", _source(marked("one")))
    _publish(k8s_stub, org, "canary")
    policy = common.RolloutPolicy(steps=[10, 50, 100], step_secs=5, max_p95_increase_pct=1000)
    with InvokeLoop(k8s_stub, org, "canary") as loop:
        loop.wait_for(20, timeout=120)
        _save(k8s_stub, org, "canary", _source(HALF_FAILING))
        assert _publish(k8s_stub, org, "canary", rollout=policy).published_version == 2
        rolled_back = wait_rollout(k8s_stub, org, "canary", limit=180)
        _save(k8s_stub, org, "canary", _source(marked("three")))
        assert _publish(k8s_stub, org, "canary", rollout=policy).published_version == 3
        completed = wait_rollout(k8s_stub, org, "canary", limit=180)
    assert rolled_back.state == common.ROLLOUT_STATE_ROLLED_BACK, rolled_back.decision
    assert rolled_back.decision.startswith(("rolled back at step 1/3", "rolled back at step 2/3"))
    assert "error rate" in rolled_back.decision
    assert completed.state == common.ROLLOUT_STATE_COMPLETED, completed.decision
    assert loop.errors == [] and loop.served(3) > 0
    app = app_meta(k8s_stub, org, "canary")
    assert app.active_version == 3 and list(app.traffic) == []
