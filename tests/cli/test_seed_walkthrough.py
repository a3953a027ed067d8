"""Seed 000's "CLI way", typed as the document types it, against the real platform.

Only the endpoint differs (the local platform instead of staging). The
organization is configured first, as ``dodil login`` would establish it.
"""

from __future__ import annotations

import json
import shutil

from tests.support import SEED_HANDLER


def test_seed_000_cli_walkthrough(dodil, platform):
    assert shutil.which("jq"), "the walk-through pipes into jq: install it (apt-get install jq)"
    (dodil.cwd / "handler.py").write_bytes(SEED_HANDLER)
    dodil("ignite", "config", "set", "organization", "acme-corp").ok()
    # The seed's app id is fixed; clear it in case an earlier test on this
    # platform made one (exit 3 = it did not exist).
    dodil("ignite", "config", "set", "api_endpoint", platform.grpc_target).ok()
    assert dodil("ignite", "app", "delete", "acme-corp:greet", "--yes").code in (0, 3)

    def step(line: str) -> str:
        done = dodil.shell(line)
        assert done.returncode == 0, f"{line!r} failed: {done.stderr}"
        return done.stdout

    step(f"dodil ignite config set api_endpoint {platform.grpc_target}")
    step("dodil ignite app create greet --runtime python")
    step("dodil ignite draft save acme-corp:greet -c ./handler.py")
    step("dodil ignite draft publish acme-corp:greet")
    landed = json.loads(
        step("dodil ignite app get acme-corp:greet -o json | jq '{active_version, public_urls}'")
    )
    assert landed["active_version"] == 1
    [url] = landed["public_urls"]
    assert "greet-acme-corp." in url

    done = dodil.shell("""dodil ignite invoke acme-corp:greet -p '{"name": "Ada"}'""")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["greeting"] == "Hello, Ada!"
    assert answer["function_id"] == "acme-corp/greet"
    assert answer["received_at"]
    # The execution id is printed on stderr and is the one the handler saw.
    assert answer["execution_id"]
    assert f"execution_id: {answer['execution_id']}" in done.stderr.splitlines()
