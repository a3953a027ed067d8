"""Safe rollouts with the ``dodil`` CLI, as a user drives them
(docs/rollouts.md): a deploy whose new version cannot start fails with the
reason while the old version serves every request of a loop running
throughout (a Python module with a syntax error, a Go binary that exits at
start, an image whose health path never answers); an unchanged draft
publishes nothing; versions show their settings; traffic splits and tags;
a deploy with a rollout follows it to its end."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ignite_launcher import LocalPlatform, temporary_platform
from tests.cli.runner import Dodil, dodil_for
from tests.support import InvokeLoop, stub_for, unique_name

ROOT = Path(__file__).resolve().parents[2]
GO_EXAMPLE = ROOT / "runtimes" / "go" / "examples" / "hello"
#: How long the gated platform waits for a version to become ready: short,
#: so that an image that never answers fails its deploy quickly.
READINESS_SECS = 8

HANDLER = """from lib import helper


def handler(payload, ctx):
    return {"value": helper.VALUE}
"""


@pytest.fixture(scope="module")
def gated() -> Iterator[LocalPlatform]:
    """A platform of its own with a short readiness bound."""
    server_args = ("--readiness-timeout-secs", str(READINESS_SECS))
    with temporary_platform(gateway_port=None, server_args=server_args) as platform:
        yield platform


@pytest.fixture
def cli(gated: LocalPlatform, tmp_path: Path) -> Iterator[tuple[Dodil, str]]:
    org = unique_name("org")
    dodil = dodil_for(gated.grpc_target, tmp_path / "home")
    dodil("ignite", "config", "set", "organization", org).ok()
    yield dodil, org


def _app(dodil: Dodil, name: str) -> dict[str, Any]:
    return json.loads(dodil("ignite", "app", "get", name, "-o", "json").ok().stdout)


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_a_broken_imported_module_fails_the_deploy_and_the_old_version_serves(cli, gated):
    dodil, org = cli
    project = _write(
        dodil.cwd / "project",
        {"handler.py": HANDLER, "lib/__init__.py": "", "lib/helper.py": "VALUE = 1\n"},
    )
    dodil("ignite", "app", "deploy", "broken", "-c", str(project), "--runtime", "python").ok()
    with InvokeLoop(stub_for(gated.grpc_target), org, "broken") as loop:
        loop.wait_for(20)
        # handler.py itself is fine; a module it imports is not.
        (project / "lib" / "helper.py").write_text("VALUE = 2\n\ndef broken(:\n    pass\n")
        failed = dodil("ignite", "app", "deploy", "broken", "-c", str(project))
        loop.wait_for(20)
    assert failed.code != 0
    assert "VERSION_NOT_READY" in failed.stderr
    assert "lib/helper.py:3: SyntaxError" in failed.stderr, failed.stderr
    assert 'File "lib/helper.py", line 3' in failed.stderr and "def broken(:" in failed.stderr
    assert "version 1 keeps serving" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert loop.failures == [] and loop.served(1) >= 40
    assert _app(dodil, "broken")["active_version"] == 1
    versions = json.loads(dodil("ignite", "version", "list", "broken", "-o", "json").ok().stdout)
    assert [(v["version"], v["status"]) for v in versions] == [
        (2, "VERSION_STATUS_FAILED"),
        (1, "VERSION_STATUS_ACTIVE"),
    ]
    assert "lib/helper.py:3" in versions[0]["error"]

    # The same for an import that is missing, with the frame that imports it.
    (project / "lib" / "helper.py").write_text("import json\nimport no_such_package_here\n")
    failed = dodil("ignite", "app", "deploy", "broken", "-c", str(project))
    assert "lib/helper.py:2: ModuleNotFoundError" in failed.stderr, failed.stderr
    assert "import no_such_package_here" in failed.stderr
    assert _app(dodil, "broken")["active_version"] == 1


def test_a_go_binary_that_exits_at_start_fails_its_deploy(cli, gated):
    dodil, org = cli
    project = dodil.cwd / "hello"
    shutil.copytree(GO_EXAMPLE, project)
    dodil(
        "ignite", "app", "deploy", "hello", "-c", str(project), "--runtime", "go", timeout=900
    ).ok()
    main = (project / "main.go").read_text()
    exits = main.replace(
        "func main() {\n",
        'func main() {\n\tprintln("no database configured: giving up")\n\tos.Exit(3)\n',
    ).replace("import (\n", 'import (\n\t"os"\n')
    with InvokeLoop(stub_for(gated.grpc_target), org, "hello", body=b'{"name": "Go"}') as loop:
        loop.wait_for(20)
        (project / "main.go").write_text(exits)
        failed = dodil("ignite", "app", "deploy", "hello", "-c", str(project), timeout=900)
        loop.wait_for(20)
    assert failed.code != 0
    assert "VERSION_NOT_READY" in failed.stderr and "exit" in failed.stderr, failed.stderr
    assert "no database configured" in failed.stderr
    assert loop.failures == [] and loop.served(1) >= 40
    assert _app(dodil, "hello")["active_version"] == 1


def _image_context(folder: Path, binary: Path, command: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(binary, folder / "server")
    (folder / "Dockerfile").write_text(
        f'FROM scratch\nCOPY server /server\nENTRYPOINT ["/server"{command}]\n'
    )
    return folder


def test_an_image_whose_health_path_never_answers_fails_its_deploy(cli, gated, probe_binary):
    dodil, org = cli
    if not gated.registry:
        pytest.fail("this machine cannot run image apps: install the image tools (make sandbox)")
    web = _image_context(dodil.cwd / "web", probe_binary, "")
    deploy = ("ignite", "app", "deploy", "probe", "--dockerfile-path", "Dockerfile")
    dodil(*deploy, "-c", str(web), "--health-path", "/healthz", timeout=600).ok()
    # The same image, told to run without ever listening.
    idle = _image_context(dodil.cwd / "idle", probe_binary, ', "idle"')
    with InvokeLoop(stub_for(gated.grpc_target), org, "probe") as loop:
        loop.wait_for(20)
        failed = dodil(*deploy, "-c", str(idle), "--health-path", "/healthz", timeout=600)
        loop.wait_for(20)
    assert failed.code != 0
    assert "VERSION_NOT_READY" in failed.stderr
    assert f"no pod answered GET /healthz within {READINESS_SECS}s" in failed.stderr
    assert loop.failures == [] and loop.served(1) >= 40
    assert _app(dodil, "probe")["active_version"] == 1


GREETER = """import os

def handler(payload, ctx):
    return {"marker": %r, "greeting": os.environ.get("GREETING", "")}
"""
HALF_FAILING = """import itertools

_calls = itertools.count()

def handler(payload, ctx):
    if next(_calls) % 2:
        raise RuntimeError("every other call fails")
    return {"marker": "half"}
"""


def test_publishing_an_unchanged_draft_twice_makes_one_version(ignite: Dodil):
    (ignite.cwd / "greet.py").write_text(GREETER % "one")
    ignite("ignite", "app", "create", "twice", "--runtime", "python").ok()
    ignite("ignite", "draft", "save", "twice", "-c", "greet.py").ok()
    first = ignite("ignite", "draft", "publish", "twice", "-m", "first cut").ok()
    assert "Published" in first.stdout
    second = ignite("ignite", "draft", "publish", "twice").ok()
    assert "unchanged, version 1 stays active" in second.stderr
    assert "Unchanged:" in second.stdout
    versions = json.loads(ignite("ignite", "version", "list", "twice", "-o", "json").ok().stdout)
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["message"] == "first cut"
    forced = json.loads(
        ignite("ignite", "draft", "publish", "twice", "--force", "-o", "json").ok().stdout
    )
    assert forced["published_version"] == 2 and not forced["unchanged"]


def test_versions_traffic_and_tags_from_the_cli(ignite: Dodil):
    (ignite.cwd / "v1.py").write_text(GREETER % "one")
    (ignite.cwd / "v2.py").write_text(GREETER % "two")
    deploy = ("ignite", "app", "deploy", "shop", "--runtime", "python")
    ignite(*deploy, "-c", "v1.py", "--env", "GREETING=hello", "--tier", "medium").ok()
    ignite(*deploy, "-c", "v2.py", "--env", "GREETING=bonjour", "-m", "french").ok()

    listed = ignite("ignite", "version", "list", "shop").ok().stdout
    assert "GREETING" in listed and "bonjour" not in listed and "french" in listed
    shown = ignite("ignite", "version", "get", "shop", "1").ok().stdout
    assert "medium" in shown and "GREETING" in shown and "hello" not in shown
    revealed = ignite("ignite", "version", "get", "shop", "1", "--show-env").ok().stdout
    assert "GREETING=hello" in revealed
    data = json.loads(ignite("ignite", "version", "get", "shop", "2", "-o", "json").ok().stdout)
    assert data["version"]["settings"]["env"] == {"GREETING": "<hidden>"}
    assert data["version"]["published_by"] == "local"

    split = ignite("ignite", "traffic", "set", "shop", "v1=90", "v2=10").ok().stdout
    assert "v1 90%, v2 10%" in split
    got = json.loads(ignite("ignite", "traffic", "get", "shop", "-o", "json").ok().stdout)
    assert got["active_version"] == 1
    assert got["traffic"] == [{"version": 1, "percent": 90}, {"version": 2, "percent": 10}]

    ignite("ignite", "version", "tag", "shop", "2", "canary").ok()
    for _ in range(5):
        tagged = ignite("ignite", "invoke", "shop", "--tag", "canary", "-p", "{}").ok()
        assert json.loads(tagged.stdout)["marker"] == "two"
        assert "version: 2" in tagged.stderr
    bad = ignite("ignite", "traffic", "set", "shop", "v1=90", "v2=20")
    assert bad.code != 0 and "not 100%" in bad.error_line()

    cleared = json.loads(ignite("ignite", "traffic", "clear", "shop", "-o", "json").ok().stdout)
    assert cleared["active_version"] == 1 and cleared["traffic"] == []
    assert cleared["tags"] == {"canary": 2}
    ignite("ignite", "version", "untag", "shop", "canary").ok()
    missing = ignite("ignite", "invoke", "shop", "--tag", "canary", "-p", "{}")
    assert "TAG_NOT_FOUND" in missing.error_line()


def test_a_deploy_with_a_rollout_follows_it_to_its_end(ignite: Dodil, platform, org):
    (ignite.cwd / "good.py").write_text(GREETER % "one")
    (ignite.cwd / "bad.py").write_text(HALF_FAILING)
    (ignite.cwd / "better.py").write_text(GREETER % "three")
    deploy = ("ignite", "app", "deploy", "canary", "--runtime", "python")
    ignite(*deploy, "-c", "good.py").ok()
    rollout = ("--rollout", "canary:10,50", "--step", "3s", "--max-p95-increase", "1000", "--wait")
    with InvokeLoop(stub_for(platform.grpc_target), org, "canary") as loop:
        loop.wait_for(20)
        rolled_back = ignite(*deploy, "-c", "bad.py", *rollout, timeout=120)
        healthy = ignite(*deploy, "-c", "better.py", *rollout, timeout=120)
    assert rolled_back.code != 0
    assert "rollout of version 2 started" in rolled_back.stderr.lower()
    assert "was rolled back" in rolled_back.error_line()
    assert "error rate" in rolled_back.stderr
    healthy.ok()
    assert "completed after step 2/3 (50%)" in healthy.stderr
    assert loop.errors == [] and loop.served(3) > 0
    app = json.loads(ignite("ignite", "app", "get", "canary", "-o", "json").ok().stdout)
    assert app["active_version"] == 3 and app["traffic"] == []
    assert app["rollout"]["state"] == "ROLLOUT_STATE_COMPLETED"
