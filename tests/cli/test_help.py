"""``dodil --help`` and every group's help list whole descriptions."""

from __future__ import annotations

import click
from click.testing import CliRunner

from dodil_cli.cli import cli


def _groups(group: click.Group, path: tuple[str, ...] = ()):
    yield path
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _groups(command, (*path, name))


def test_no_command_description_is_cut_mid_sentence():
    runner = CliRunner()
    for path in _groups(cli):
        shown = runner.invoke(cli, [*path, "--help"], terminal_width=80)
        assert shown.exit_code == 0, shown.output
        listing = shown.output.split("Commands:", 1)[-1]
        assert "..." not in listing, f"dodil {' '.join(path)} --help:\n{listing}"


def test_the_auth_and_app_commands_real_apps_use_are_listed():
    runner = CliRunner()
    auth = runner.invoke(cli, ["auth", "--help"]).output
    assert "status" in auth
    accounts = runner.invoke(cli, ["auth", "service-account", "--help"]).output
    for name in ("create", "list", "delete", "list-roles", "grant-role", "revoke-role"):
        assert name in accounts
    app = runner.invoke(cli, ["ignite", "app", "--help"]).output
    for name in ("logs", "delete", "deploy"):
        assert name in app
