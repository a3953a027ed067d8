"""`make run` on this checkout starts the platform a newcomer gets: the
server on its embedded PostgreSQL, answering grpcurl; Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ignite_launcher import free_port, private_state_dir
from tests.api.test_grpcurl import _run as grpcurl

ROOT = Path(__file__).resolve().parent.parent


def test_make_run_serves_grpcurl_and_stops_cleanly():
    state = private_state_dir("ignite-make-run-")
    grpc_port = free_port()
    config_home = state / "xdg"
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(config_home),
        "IGNITE_STATE_DIR": str(state),
        "IGNITE_GRPC_PORT": str(grpc_port),
        "IGNITE_HTTP_PORT": str(free_port()),
        "IGNITE_METRICS_PORT": str(free_port()),
        "IGNITE_GATEWAY_METRICS_PORT": str(free_port()),
    }
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = []
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "Press Ctrl-C to stop" in line:
                break
            assert time.monotonic() < deadline, "".join(output)
        else:
            raise AssertionError("make run exited:\n" + "".join(output))
        # `make run` installed what the sandbox needs, and says pods use it.
        assert any(line.startswith("Pods are sandboxed") for line in output), "".join(output)
        assert not any("WITHOUT a sandbox" in line for line in output)
        # ... and image apps with their embedded registry, which answers.
        images = next(line for line in output if line.lstrip().startswith("images"))
        registry = images.split()[1]
        assert registry.startswith("127.0.0.1:"), images
        # It answers, and only to who holds a token (registry auth: 401).
        try:
            urllib.request.urlopen(f"http://{registry}/v2/", timeout=10).close()
            raise AssertionError("the registry answered without a token")
        except urllib.error.HTTPError as refused:
            assert refused.code == 401
            assert "Bearer" in refused.headers.get("WWW-Authenticate", "")
        # Its /metrics answer on the ports it printed.
        metrics_line = next(line for line in output if line.lstrip().startswith("metrics"))
        server_metrics = metrics_line.split()[1]
        with urllib.request.urlopen(server_metrics, timeout=10) as answer:
            assert b"ignite_" in answer.read()
        target = f"localhost:{grpc_port}"
        listed = grpcurl("-plaintext", target, "list")
        assert "dodil.ignite.v1.ComputeService" in listed.stdout.split(), listed.stderr
        body = json.dumps(
            {"organization_name": "acme-corp", "name": "greet", "runtime": {"python": {}}}
        )
        # Authentication is on: the platform admin's credentials are in the
        # state directory, and the local CLI was logged in with them.
        refused = grpcurl(
            "-plaintext", "-d", body, target, "dodil.ignite.v1.ComputeService/CreateApp"
        )
        assert "Unauthenticated" in refused.stderr
        creds = (state / "admin-credentials.json").read_text()
        issued = grpcurl(
            "-plaintext", "-d", creds, target, "dodil.ignite.v1.IdentityService/IssueToken"
        )
        assert issued.returncode == 0, issued.stderr
        bearer = f"authorization: Bearer {json.loads(issued.stdout)['access_token']}"
        # The README's first step: the administrator makes the tenant.
        tenant = grpcurl(
            "-plaintext",
            "-H",
            bearer,
            "-d",
            '{"name": "acme-corp"}',
            target,
            "dodil.ignite.v1.IdentityService/CreateOrganization",
        )
        assert tenant.returncode == 0, tenant.stderr
        created = grpcurl(
            "-plaintext",
            "-H",
            bearer,
            "-d",
            body,
            target,
            "dodil.ignite.v1.ComputeService/CreateApp",
        )
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["app_id"] == "acme-corp/greet"
        whoami = subprocess.run(
            [str(Path(sys.executable).parent / "dodil"), "whoami", "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert whoami.returncode == 0, whoami.stderr
        assert "admin@system" in whoami.stdout
        # The embedded cluster lives in the state directory.
        assert (state / "postgres" / "data" / "PG_VERSION").exists()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    # Everything it started is gone, PostgreSQL included.
    assert not (state / "postgres" / "data" / "postmaster.pid").exists()
