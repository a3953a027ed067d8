"""Server errors as the user sees them: one line, status and reason, exit code."""

from __future__ import annotations

from tests.support import SEED_HANDLER


def test_unknown_app(ignite, org):
    result = ignite("ignite", "app", "get", "no-such-app")
    assert result.code == 3
    line = result.error_line()
    assert line.startswith("error: NOT_FOUND")
    assert "no-such-app" in line
    assert result.stdout == ""
    verbose = ignite("ignite", "app", "get", "no-such-app", "--verbose")
    assert "domain: ignite.dodil.io" in verbose.stderr


def test_unknown_app_on_every_kind_of_command(ignite):
    (ignite.cwd / "handler.py").write_bytes(SEED_HANDLER)
    for args in (
        ["ignite", "draft", "save", "ghost", "-c", "handler.py", "--runtime", "python"],
        ["ignite", "draft", "publish", "ghost"],
        ["ignite", "version", "list", "ghost"],
        ["ignite", "invoke", "ghost", "-p", "{}"],
        ["ignite", "app", "delete", "ghost", "--yes"],
    ):
        result = ignite(*args)
        assert result.code == 3, (args, result.stderr)
        assert result.error_line().startswith("error: NOT_FOUND"), args


def test_duplicate_app(ignite):
    ignite("ignite", "app", "create", "twice", "--runtime", "python").ok()
    result = ignite("ignite", "app", "create", "twice", "--runtime", "python")
    assert result.code == 4
    assert result.error_line().startswith("error: ALREADY_EXISTS")


def test_publish_without_draft_and_rollback_to_missing_version(ignite):
    ignite("ignite", "app", "create", "empty", "--runtime", "python").ok()
    publish = ignite("ignite", "draft", "publish", "empty")
    assert publish.code == 5
    assert publish.error_line().startswith("error: FAILED_PRECONDITION (")
    rollback = ignite("ignite", "app", "rollback", "empty", "--version", "7")
    assert rollback.code != 0
    rollback.error_line()


def test_bad_input_against_the_platform(ignite):
    ignite("ignite", "app", "create", "real", "--runtime", "python").ok()
    cases = [
        (["ignite", "app", "get", "Real"], "invalid app name 'Real'"),
        (["ignite", "app", "get", "x:y:z"], "invalid app id 'x:y:z'"),
        (["ignite", "draft", "save", "real", "-c", "nope/handler.py"], "code not found"),
        (["ignite", "invoke", "real", "-p", "{'single': 'quotes'}"], "invalid JSON in -p payload"),
        (["ignite", "invoke", "real", "-f", "absent.json"], "payload file not found"),
    ]
    for args, message in cases:
        result = ignite(*args)
        assert result.code == 2, (args, result.stderr)
        assert message in result.error_line(), args
        assert result.stdout == ""
