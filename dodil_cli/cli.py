"""The ``dodil`` command tree.

``dodil`` is the platform's command line; Ignite (compute) lives under
``dodil ignite``, identity commands (``login``, ``whoami``, ``auth``) at the
top so other products can share them.
"""

from __future__ import annotations

import inspect

import click
from click.shell_completion import get_completion_class

from dodil_cli import __version__
from dodil_cli.commands.app import app_group
from dodil_cli.commands.auth import login, logout, status, whoami
from dodil_cli.commands.config import config_group
from dodil_cli.commands.draft import draft_group
from dodil_cli.commands.execution import execution_group
from dodil_cli.commands.invoke import invoke
from dodil_cli.commands.logs import logs
from dodil_cli.commands.organization import org_group
from dodil_cli.commands.secret import secret_group
from dodil_cli.commands.service_account import service_account_group
from dodil_cli.commands.traffic import traffic_group
from dodil_cli.commands.version import version_group
from dodil_cli.errors import UsageError
from dodil_cli.options import common_options

#: The environment variable click's completion protocol uses for this program.
COMPLETE_VAR = "_DODIL_COMPLETE"

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=_CONTEXT)
@click.version_option(__version__, prog_name="dodil")
@common_options
def cli() -> None:
    """dodil: deploy and run apps on the dodil platform."""


@cli.group("ignite")
def ignite() -> None:
    """Ignite compute: apps, drafts, versions, invocations, executions, logs."""


@cli.group("auth")
def auth() -> None:
    """Identity: login status, organizations and service accounts."""


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash: eval "$(dodil completion bash)"   (e.g. in ~/.bashrc)
    zsh:  eval "$(dodil completion zsh)"    (e.g. in ~/.zshrc)
    fish: dodil completion fish > ~/.config/fish/completions/dodil.fish
    """
    cls = get_completion_class(shell)
    if cls is None:  # click.Choice makes this unreachable; kept for mypy
        raise UsageError(f"unsupported shell {shell}")
    click.echo(cls(cli, {}, "dodil", COMPLETE_VAR).source())


cli.add_command(login)
cli.add_command(logout)
cli.add_command(whoami)
auth.add_command(status)
auth.add_command(org_group)
auth.add_command(service_account_group)
# `app logs` is `logs` again, where people who think of logs as the app's look.
app_group.add_command(logs)
for command in (
    config_group,
    app_group,
    draft_group,
    version_group,
    traffic_group,
    invoke,
    execution_group,
    logs,
    secret_group,
):
    ignite.add_command(command)


def _whole_summaries(command: click.Command) -> None:
    """Give every command its docstring's whole first paragraph as the line
    its group's --help lists, instead of click's 45 characters cut with
    '...'; the help formatter wraps it to the terminal."""
    if command.short_help is None and command.help:
        paragraph = inspect.cleandoc(command.help).split("\n\n", 1)[0]
        command.short_help = " ".join(paragraph.split())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _whole_summaries(sub)


_whole_summaries(cli)
