"""The installed dodil executable where no server is needed: config, login,
input checks that fail before anything is sent, and its error contract."""

from __future__ import annotations

import json
import socket
import stat

import pytest
import yaml


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_config_set_get_list(dodil):
    dodil("ignite", "config", "set", "api_endpoint", "rpc.dev.dodil.io:443").ok()
    dodil("ignite", "config", "set", "organization", "acme-corp").ok()
    assert dodil("ignite", "config", "get", "api_endpoint").ok().stdout == "rpc.dev.dodil.io:443\n"
    listed = json.loads(dodil("ignite", "config", "list", "-o", "json").ok().stdout)
    assert {r["key"]: (r["value"], r["source"]) for r in listed} == {
        "api_endpoint": ("rpc.dev.dodil.io:443", "file"),
        "organization": ("acme-corp", "file"),
        "output": ("table", "default"),
        "plaintext": ("false", "default"),
    }
    stored = yaml.safe_load((dodil.config_home / "dodil" / "config.yaml").read_text())
    assert stored == {"api_endpoint": "rpc.dev.dodil.io:443", "organization": "acme-corp"}


def test_config_output_default_applies_to_every_command(dodil):
    dodil("ignite", "config", "set", "output", "json").ok()
    assert json.loads(dodil("ignite", "config", "get", "output").ok().stdout)["value"] == "json"


def test_invalid_config_value(dodil):
    result = dodil("ignite", "config", "set", "organization", "Acme Corp")
    assert result.code == 2
    assert "invalid organization" in result.error_line()
    assert result.stdout == ""


def test_login_stores_a_private_token_and_logout_removes_it(dodil):
    dodil("login", "--token", "tok-123456789abc", "--organization", "acme-corp").ok()
    path = dodil.config_home / "dodil" / "credentials.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    who = json.loads(dodil("whoami", "-o", "json").ok().stdout)
    assert who["credentials"]["kind"] == "token"
    assert who["organization"] == "acme-corp"
    assert "tok-123456789abc" not in json.dumps(who)
    dodil("logout").ok()
    assert not path.exists()
    assert json.loads(dodil("whoami", "-o", "json").ok().stdout)["credentials"] is None


def test_whoami_reports_token_from_environment(dodil):
    dodil.env["DODIL_TOKEN"] = "env-token-value-xyz"
    who = json.loads(dodil("whoami", "-o", "json").ok().stdout)
    assert who["credentials"]["source"] == "env DODIL_TOKEN"


def test_loopback_endpoint_is_plaintext_remote_is_tls(dodil):
    dodil("ignite", "config", "set", "api_endpoint", "127.0.0.1:50051").ok()
    assert json.loads(dodil("whoami", "-o", "json").ok().stdout)["tls"] is False
    dodil("ignite", "config", "set", "api_endpoint", "rpc.dev.dodil.io:443").ok()
    assert json.loads(dodil("whoami", "-o", "json").ok().stdout)["tls"] is True
    assert json.loads(dodil("whoami", "-o", "json", "--plaintext").ok().stdout)["tls"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ignite", "app", "get", "Acme:greet"], "invalid organization 'Acme'"),
        (["ignite", "app", "get", "acme:greet:v2"], "invalid app id 'acme:greet:v2'"),
        (["ignite", "app", "get", "acme:Greet_1"], "invalid app name 'Greet_1'"),
        (["ignite", "app", "get", "greet"], "has no organization"),
        (
            ["ignite", "draft", "save", "acme:greet", "-c", "./missing.py"],
            "code not found: ./missing.py",
        ),
        (
            ["ignite", "app", "deploy", "acme:greet", "--code", "./nowhere"],
            "code not found: ./nowhere",
        ),
        (["ignite", "invoke", "acme:greet", "-p", '{"name": Ada}'], "invalid JSON in -p payload"),
        (
            ["ignite", "invoke", "acme:greet", "-f", "missing.json"],
            "payload file not found: missing.json",
        ),
        (["ignite", "app", "create", "acme:greet"], "a runtime is needed"),
        (
            ["ignite", "app", "create", "acme:greet", "--runtime", "cobol"],
            "Invalid value for '--runtime'",
        ),
        (["ignite", "app", "rollback", "acme:greet"], "Missing option '--version'"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(dodil, args, message):
    # An endpoint nothing listens on: these must fail before connecting.
    dodil("ignite", "config", "set", "api_endpoint", f"127.0.0.1:{_closed_port()}").ok()
    result = dodil(*args)
    assert result.code == 2, result.stderr
    assert message in result.error_line()
    assert result.stdout == ""


def test_unreachable_server(dodil):
    port = _closed_port()
    result = dodil("ignite", "app", "get", "acme:greet", "--endpoint", f"127.0.0.1:{port}")
    assert result.code == 9
    assert (
        result.error_line()
        == f"error: UNAVAILABLE: cannot reach the Ignite API at 127.0.0.1:{port} (plaintext)"
    )
    verbose = dodil("ignite", "app", "get", "acme:greet", "--endpoint", f"127.0.0.1:{port}", "-v")
    assert "grpc: failed to connect" in verbose.stderr


def test_no_colour_when_piped_or_with_no_color(dodil):
    dodil.env["NO_COLOR"] = "1"
    result = dodil("ignite", "app", "get", "x")
    assert "\x1b[" not in result.stderr


def test_completion_script(dodil):
    script = dodil("completion", "bash").ok().stdout
    assert "_DODIL_COMPLETE" in script


def test_click_completion_protocol_lists_subcommands(dodil):
    dodil.env.update(
        {"_DODIL_COMPLETE": "bash_complete", "COMP_WORDS": "dodil ignite ap", "COMP_CWORD": "2"}
    )
    result = dodil()
    assert "plain,app" in result.stdout.splitlines()


def test_damaged_config_file_is_one_line_and_help_still_works(dodil):
    path = dodil.config_home / "dodil" / "config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("api_endpoint: [unclosed\n")
    result = dodil("ignite", "app", "get", "acme:greet")
    assert result.code == 1
    assert f"{path} is not valid YAML" in result.error_line()
    assert "Usage:" in dodil("ignite", "app", "--help").ok().stdout


def test_login_reads_the_token_from_stdin(dodil):
    dodil("login", "--token", "-", input="piped-token-0123456789\n").ok()
    stored = yaml.safe_load((dodil.config_home / "dodil" / "credentials.yaml").read_text())
    # The credentials are kept with the endpoint they are for (the default).
    assert stored == {
        "kind": "token",
        "token": "piped-token-0123456789",
        "endpoint": "localhost:50051",
    }
    empty = dodil("login", input="")
    assert empty.code == 2
    assert "no token given" in empty.error_line()
