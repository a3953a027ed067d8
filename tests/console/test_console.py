"""The web console in a real browser: Debian's chromium, headless, driven by
playwright-core (console/node_modules) from tests/console/console_e2e.mjs,
against a platform with authentication on. Screenshots of each page land in
build/screenshots/console/."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ignite_launcher import LocalPlatform
from tests.observability.workload import ECHO_HANDLER, Api
from tests.support import require_tool, unique_name

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "console"
SHOTS = ROOT / "build" / "screenshots" / "console"


def _browser() -> str:
    chromium = require_tool("chromium", "tools/observability.sh")
    if not (CONSOLE / "node_modules" / "playwright-core").is_dir():
        pytest.fail(
            "console/node_modules is missing: `make toolchains` (tools/console.sh) installs it"
        )
    return chromium


@pytest.mark.timeout(300)
def test_console_in_a_browser(auth_platform: LocalPlatform) -> None:
    chromium = _browser()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    api = Api.sign_in(auth_platform)
    org, app = unique_name("org"), "echo"
    api.call("POST", "/v1/ignite/org", {"name": org})
    api.deploy(org, app)
    api.save(org, app, ECHO_HANDLER + b"\n# version 2\n")
    # Version 2 with an env value the console must not show.
    api.call(
        "POST",
        f"/v1/ignite/app/{org}/{app}/draft/publish",
        {"app": {"env": {"GREETING": "hidden-greeting-value"}}, "updateMask": "env"},
    )
    api.call("POST", f"/v1/ignite/app/{org}/{app}/tags/canary", {"version": 2})
    for n in range(3):
        assert api.invoke(org, app, {"n": n})[0] == 200
    execution_id = api.invoke_async(org, app, {"n": 7})
    api.wait_execution(org, execution_id)
    client_id, secret = auth_platform.admin_credentials()
    run = subprocess.run(
        ["node", str(Path(__file__).with_name("console_e2e.mjs"))],
        env={
            **os.environ,
            "CONSOLE_DIR": str(CONSOLE),
            "CHROMIUM": chromium,
            "GATEWAY_URL": auth_platform.http_url,
            "CLIENT_ID": client_id,
            "CLIENT_SECRET": secret,
            "ORG": org,
            "APP": app,
            "EXECUTION_ID": execution_id,
            "UNKNOWN_ORG": unique_name("nope"),
            "SHOTS": str(SHOTS),
        },
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    names = sorted(p.name for p in SHOTS.glob("*.png"))
    assert names == [
        "01-sign-in.png", "02-apps.png", "03-app.png", "04-confirm-rollback.png",
        "05-rolled-back.png", "05b-promoted.png", "05c-traffic.png", "06-chart.png",
        "07-live-logs.png", "08-execution.png", "09-error.png", "10-unknown-organization.png",
    ]  # fmt: skip
