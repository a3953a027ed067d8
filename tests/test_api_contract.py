"""The API contract stays honest: buf lint clean, gen/ what the protos make,
and the field numbers clients of the documented API send never move."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_buf_lint_is_clean():
    subprocess.run(
        [sys.executable, "tools/proto_deps.py", "build/proto-deps"], cwd=ROOT, check=True
    )
    result = subprocess.run([str(BIN / "buf"), "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gen_is_fresh():
    result = subprocess.run(
        [sys.executable, "tools/gen_check.py", "build/proto-deps"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def _numbers(message) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}


def test_documented_field_numbers():
    # Seed 001's AppMeta, Execution, CodeSource and CompileSource numbers.
    app = _numbers(common.AppMeta)
    assert {
        k: app[k]
        for k in (
            "id",
            "name",
            "organization_name",
            "runtime",
            "resource_tier",
            "limits",
            "scaling",
            "env",
            "storage_mode",
            "deployment_state",
            "version",
            "active_version",
            "description",
            "input_schema",
            "output_schema",
            "mcp_enabled",
            "max_concurrency",
            "deployment_mode",
            "code_kind",
            "image_ref",
            "public_urls",
            "created_at_ms",
            "updated_at_ms",
        )
    } == {
        "id": 1,
        "name": 2,
        "organization_name": 27,
        "runtime": 3,
        "resource_tier": 9,
        "limits": 4,
        "scaling": 10,
        "env": 5,
        "storage_mode": 11,
        "deployment_state": 15,
        "version": 26,
        "active_version": 28,
        "description": 29,
        "input_schema": 30,
        "output_schema": 31,
        "mcp_enabled": 32,
        "max_concurrency": 38,
        "deployment_mode": 39,
        "code_kind": 45,
        "image_ref": 40,
        "public_urls": 43,
        "created_at_ms": 7,
        "updated_at_ms": 8,
    }
    execution = _numbers(common.Execution)
    assert {
        k: execution[k]
        for k in (
            "id",
            "app_id",
            "status",
            "result",
            "error",
            "metrics",
            "function_version",
            "error_class",
            "started_at_ms",
            "completed_at_ms",
        )
    } == {
        "id": 1,
        "app_id": 2,
        "status": 3,
        "result": 4,
        "error": 5,
        "metrics": 6,
        "function_version": 9,
        "error_class": 13,
        "started_at_ms": 7,
        "completed_at_ms": 8,
    }
    assert _numbers(compute.CodeSource) == {"compile": 1, "image": 2}
    assert _numbers(compute.CompileSource) == {
        "runtime": 1,
        "source_code": 2,
        "archive": 3,
        "build_args": 4,
    }
    assert _numbers(common.HttpContext) == {"method": 1, "path": 2, "query": 3, "headers": 4}
    assert common.DeploymentState.Value("DEPLOYMENT_STATE_CREATED") == 8
    assert common.CodeKind.Value("CODE_KIND_PREBUILT") == 4
