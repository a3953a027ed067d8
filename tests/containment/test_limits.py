"""Memory limits hold at every size: a handler reads its own cgroup limit,
fills 80 % of it, and is killed and reported past it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from dodil.ignite.v1 import ignite_common_pb2 as common

from tests.support import deploy_python, error_info, invoke

ESCAPE = (Path(__file__).resolve().parent / "escape_python.py").read_bytes()
MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("settings", "memory_mb"),
    [
        ({"resource_tier": common.RESOURCE_TIER_MEDIUM}, 512),
        ({"resource_tier": common.RESOURCE_TIER_LARGE}, 1024),
        ({"resource_tier": common.RESOURCE_TIER_XLARGE}, 2048),
        ({"limits": common.ResourceLimits(memory_mb=768)}, 768),
    ],
    ids=["medium", "large", "xlarge", "explicit-768"],
)
def test_the_limit_is_the_apps_own(stub: Any, org: str, settings: Any, memory_mb: int) -> None:
    deploy_python(stub, org, "sized", ESCAPE, **settings)

    def ask(request: dict[str, Any]) -> dict[str, Any]:
        status, body = invoke(stub, org, "sized", json.dumps(request).encode())
        assert status == 200, body[:500]
        return json.loads(body)

    assert ask({"do": "limits"}) == {"limit": memory_mb * MIB}
    eighty_percent = memory_mb * 8 // 10
    assert ask({"do": "allocate", "mib": eighty_percent}) == {"allocated_mib": eighty_percent}
    with pytest.raises(grpc.RpcError) as caught:
        ask({"do": "allocate", "mib": memory_mb + memory_mb // 4})
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = error_info(caught.value)
    assert info is not None and info.reason == "OUT_OF_MEMORY"
    assert f"{memory_mb} MB" in (caught.value.details() or "")
    # A fresh pod serves the next request, with the same limit.
    assert ask({"do": "limits"}) == {"limit": memory_mb * MIB}
