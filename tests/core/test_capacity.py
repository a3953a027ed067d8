"""Admission bookkeeping: pods are admitted against the machine's pod memory
and each organization's quota, grants are given back once, and
reservations are checked against every other app's."""

from __future__ import annotations

import dataclasses

import pytest

from ignite_server.core.capacity import PodCapacity
from ignite_server.domain.errors import ResourceExhausted
from ignite_server.domain.models import (
    App,
    CodeKind,
    DeploymentMode,
    Limits,
    ResourceTier,
    ScaleMetric,
    Scaling,
    StorageMode,
)
from ignite_server.domain.quotas import Quotas


def _app(org: str, name: str, memory_mb: int, reserved: int) -> App:
    return App(
        organization=org,
        name=name,
        runtime=None,
        tier=ResourceTier.SMALL,
        limits=Limits(memory_mb=memory_mb),
        scaling=Scaling(
            max_replicas=10,
            reserved_capacity=reserved,
            scale_threshold=0,
            scale_metric=ScaleMetric.CONCURRENCY,
            scaledown_period_secs=300,
        ),
        env={},
        storage_mode=StorageMode.PERSISTENT,
        ttl_seconds=0,
        description="",
        input_schema="",
        output_schema="",
        mcp_enabled=False,
        max_concurrency=0,
        allow_unauthenticated=False,
        active_version=1,
        code_kind=CodeKind.SDK,
        deployment_mode=DeploymentMode.COMPILATION,
        image_ref="",
        created_at_ms=0,
        updated_at_ms=0,
    )


def test_pods_are_admitted_against_the_machine_and_the_organizations_quota():
    capacity = PodCapacity(1000, Quotas(max_pod_memory_mb=600))
    first = capacity.admit("a", 400)
    capacity.admit("a", 200)
    with pytest.raises(ResourceExhausted) as quota:
        capacity.admit("a", 100)
    assert quota.value.reason == "QUOTA_EXCEEDED"
    assert quota.value.metadata["quota"] == "pod_memory_mb"
    assert quota.value.metadata["used"] == "600"
    capacity.admit("b", 300)
    with pytest.raises(ResourceExhausted) as full:
        capacity.admit("b", 200)
    assert full.value.reason == "CAPACITY"
    assert full.value.metadata == {"wanted_mb": "200", "free_mb": "100", "total_mb": "1000"}
    capacity.release(first)
    capacity.release(first)  # once only
    assert capacity.used_mb == 500 and capacity.used_by("a") == 200
    capacity.admit("b", 200)


def test_without_a_machine_limit_only_the_quotas_apply():
    capacity = PodCapacity(None, Quotas(max_pod_memory_mb=1000))
    for _ in range(4):
        capacity.admit("a", 250)
    with pytest.raises(ResourceExhausted) as quota:
        capacity.admit("a", 1)
    assert quota.value.reason == "QUOTA_EXCEEDED"


def test_reservations_must_fit_beside_every_other():
    capacity = PodCapacity(2048, Quotas(max_reserved_memory_mb=1024))
    others = [_app("a", "one", 512, 2), _app("b", "two", 256, 2)]
    capacity.check_reservation(_app("b", "new", 256, 2), others)
    with pytest.raises(ResourceExhausted) as full:
        capacity.check_reservation(_app("c", "new", 512, 2), others)
    assert (full.value.reason, full.value.metadata["free_mb"]) == ("CAPACITY", "512")
    with pytest.raises(ResourceExhausted) as quota:
        capacity.check_reservation(_app("a", "new", 128, 3), others)
    assert quota.value.metadata["quota"] == "reserved_memory_mb"
    # An app's own earlier reservation does not count against its new one.
    grown = dataclasses.replace(
        others[0], scaling=dataclasses.replace(others[0].scaling, reserved_capacity=2)
    )
    capacity.check_reservation(grown, others)
    with pytest.raises(ResourceExhausted) as huge:
        capacity.check_reservation(_app("c", "huge", 4096, 0), [])
    assert huge.value.reason == "CAPACITY"
