"""grpcurl, the tool users reach for first, works through reflection."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path


def _grpcurl() -> str:
    found = shutil.which("grpcurl")
    if found:
        return found
    gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True, check=True)
    path = Path(gopath.stdout.strip()) / "bin" / "grpcurl"
    assert path.exists(), "grpcurl is installed by tools/toolchains.sh (make test)"
    return str(path)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_grpcurl(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_list_describe_and_create_from_json(platform, org):
    listed = _run("-plaintext", platform.grpc_target, "list")
    assert listed.returncode == 0, listed.stderr
    assert "dodil.ignite.v1.ComputeService" in listed.stdout.split()
    assert "grpc.health.v1.Health" in listed.stdout.split()

    described = _run(
        "-plaintext", platform.grpc_target, "describe", "dodil.ignite.v1.ComputeService"
    )
    assert described.returncode == 0, described.stderr
    for rpc in ("CreateApp", "SaveDraft", "PublishDraft", "Invoke", "RollbackApp", "ReadLogs"):
        assert f"rpc {rpc}" in described.stdout
    assert "stream .dodil.ignite.v1.InvokeResponse" in described.stdout

    body = json.dumps(
        {
            "organization_name": org,
            "name": "greet",
            "runtime": {"python": {}},
            "resource_tier": "RESOURCE_TIER_SMALL",
            "description": "from grpcurl",
        }
    )
    created = _run(
        "-plaintext", "-d", body, platform.grpc_target, "dodil.ignite.v1.ComputeService/CreateApp"
    )
    assert created.returncode == 0, created.stderr
    answer = json.loads(created.stdout)
    assert answer["app_id"] == f"{org}/greet"
    assert answer["app"]["deployment_state"] == "DEPLOYMENT_STATE_CREATED"

    again = _run(
        "-plaintext", "-d", body, platform.grpc_target, "dodil.ignite.v1.ComputeService/CreateApp"
    )
    assert again.returncode != 0
    assert "AlreadyExists" in again.stderr and "APP_ALREADY_EXISTS" in again.stderr

    health = _run("-plaintext", platform.grpc_target, "grpc.health.v1.Health/Check")
    assert json.loads(health.stdout)["status"] == "SERVING"
