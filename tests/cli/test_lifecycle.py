"""App, draft and version commands against the real platform."""

from __future__ import annotations

import json

import yaml

from tests.support import SEED_HANDLER


def _published(ignite, name="svc", versions=1):
    (ignite.cwd / "handler.py").write_bytes(SEED_HANDLER)
    ignite(
        "ignite", "app", "create", name, "--runtime", "python", "--env", "A=1", "--env", "B=2"
    ).ok()
    for n in range(versions):
        # Each version is other code: an unchanged draft publishes nothing.
        (ignite.cwd / "handler.py").write_bytes(SEED_HANDLER + f"\n# version {n + 1}\n".encode())
        ignite("ignite", "draft", "save", name, "-c", "handler.py").ok()
        ignite("ignite", "draft", "publish", name).ok()


def test_create_get_list_delete(ignite, org):
    created = ignite(
        "ignite",
        "app",
        "create",
        "one",
        "--runtime",
        "rust",
        "--rust-target",
        "wasm",
        "--description",
        "first",
        "--max-concurrency",
        "4",
        "-o",
        "json",
    ).ok()
    app = json.loads(created.stdout)
    assert app["id"] == f"{org}/one"
    assert app["runtime"] == {"rust": {"target": "RUNTIME_TARGET_WASM", "toolchain": ""}}
    assert app["max_concurrency"] == 4
    assert app["deployment_state"] == "DEPLOYMENT_STATE_CREATED"
    ignite("ignite", "app", "create", f"{org}:two", "--runtime", "go").ok()

    table = ignite("ignite", "app", "list").ok().stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "RUNTIME", "STATE"]
    assert [line.split()[0] for line in table[1:]] == ["one", "two"]
    listed = yaml.safe_load(ignite("ignite", "app", "list", "-o", "yaml").ok().stdout)
    assert [a["name"] for a in listed] == ["one", "two"]

    readable = ignite("ignite", "app", "get", "one").ok().stdout
    assert f"{org}:one" in readable
    assert "rust (wasm)" in readable

    ignite("ignite", "app", "delete", "one", "--yes").ok()
    gone = ignite("ignite", "app", "get", "one")
    assert gone.code == 3
    assert gone.error_line().startswith("error: NOT_FOUND")


def test_update_changes_only_what_is_given(ignite):
    _published(ignite, versions=0)
    updated = ignite(
        "ignite",
        "app",
        "update",
        "svc",
        "--env",
        "B=3",
        "--env",
        "C=4",
        "--unset-env",
        "A",
        "--tier",
        "large",
        "--timeout-secs",
        "20",
        "-o",
        "json",
        "--show-env",
    ).ok()
    app = json.loads(updated.stdout)
    assert app["env"] == {"B": "3", "C": "4"}
    assert app["resource_tier"] == "RESOURCE_TIER_LARGE"
    assert app["limits"] == {"timeout_secs": 20}
    unchanged = ignite("ignite", "app", "update", "svc", "--tier", "large")
    assert "nothing to change" in unchanged.ok().stderr


def test_draft_versions_and_rollback(ignite, org):
    _published(ignite, versions=2)
    draft = json.loads(ignite("ignite", "draft", "get", "svc", "-o", "json").ok().stdout)
    assert draft["draft"]["version"] == 0

    versions = ignite("ignite", "version", "list", "svc").ok().stdout.splitlines()
    assert [line.split()[0] for line in versions] == ["VERSION", "2", "1"]
    one = json.loads(ignite("ignite", "version", "get", "svc", "1", "-o", "json").ok().stdout)
    assert one["version"]["status"] == "VERSION_STATUS_SUPERSEDED"
    active = json.loads(ignite("ignite", "version", "get", "svc", "-o", "json").ok().stdout)
    assert active["version"]["version"] == 2

    rolled = ignite("ignite", "app", "rollback", "svc", "--version", "1").ok()
    assert rolled.stdout.strip() == f"{org}:svc now serves version 1."
    app = json.loads(ignite("ignite", "app", "get", "svc", "-o", "json").ok().stdout)
    assert app["active_version"] == 1


def test_directory_draft_is_packed(ignite):
    ignite("ignite", "app", "create", "packed", "--runtime", "python").ok()
    project = ignite.cwd / "project"
    project.mkdir()
    (project / "handler.py").write_bytes(SEED_HANDLER)
    (project / ".igniteignore").write_text("*.log\n")
    (project / "debug.log").write_text("x" * 50_000)
    saved = json.loads(
        ignite("ignite", "draft", "save", "packed", "--code", "project", "-o", "json").ok().stdout
    )
    assert saved["version"] == 0
    assert saved["code_kind"] == "CODE_KIND_SDK"
    assert saved["code_size_bytes"] < 10_000


def test_create_with_code_saves_the_first_draft(ignite):
    (ignite.cwd / "handler.py").write_bytes(SEED_HANDLER)
    ignite("ignite", "app", "create", "inline", "--runtime", "python", "-c", "handler.py").ok()
    published = json.loads(ignite("ignite", "draft", "publish", "inline", "-o", "json").ok().stdout)
    assert published["published_version"] == 1
    assert published["app"]["active_version"] == 1


def test_shell_completion_of_app_ids(ignite, org):
    for name in ("alpha", "alps", "beta"):
        ignite("ignite", "app", "create", name, "--runtime", "python").ok()

    def complete(words: str) -> list[str]:
        cword = str(len(words.split()) - 1)
        ignite.env.update(
            {"_DODIL_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": cword}
        )
        try:
            return [line.split(",", 1)[1] for line in ignite().stdout.splitlines()]
        finally:
            for name in ("_DODIL_COMPLETE", "COMP_WORDS", "COMP_CWORD"):
                del ignite.env[name]

    assert complete("dodil ignite app get al") == ["alpha", "alps"]
    assert complete(f"dodil ignite invoke {org}:b") == [f"{org}:beta"]
