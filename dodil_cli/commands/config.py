"""``dodil ignite config``: read and change the CLI's settings."""

from __future__ import annotations

import click

from dodil_cli.config import KEYS
from dodil_cli.options import common_options, pass_session
from dodil_cli.output import Column, info, table
from dodil_cli.session import Session


@click.group("config")
def config_group() -> None:
    """Read and change settings (api_endpoint, organization, output, plaintext)."""


@config_group.command("set")
@click.argument("name", type=click.Choice(list(KEYS)), metavar="KEY")
@click.argument("value")
@common_options
@pass_session
def set_(session: Session, name: str, value: str) -> None:
    """Set KEY to VALUE in the config file."""
    stored = session.config.set(name, value)
    session.config.save()
    info(f"{name} = {stored}  ({session.config.path})")


@config_group.command("get")
@click.argument("name", type=click.Choice(list(KEYS)), metavar="KEY")
@common_options
@pass_session
def get(session: Session, name: str) -> None:
    """Print the value of KEY in force (environment, file or default)."""
    value, source = session.config.effective(name)
    session.printer.emit({"key": name, "value": value, "source": source}, value)


@config_group.command("unset")
@click.argument("name", type=click.Choice(list(KEYS)), metavar="KEY")
@common_options
@pass_session
def unset(session: Session, name: str) -> None:
    """Remove KEY from the config file (its default applies again)."""
    if session.config.unset(name):
        session.config.save()
        info(f"{name} unset")
    else:
        info(f"{name} was not set")


@config_group.command("list")
@common_options
@pass_session
def list_(session: Session) -> None:
    """Print every setting, its value and where it comes from."""
    rows = []
    for name, spec in KEYS.items():
        value, source = session.config.effective(name)
        if source == "env":
            source = f"env {spec.env}"
        rows.append({"key": name, "value": value, "source": source})
    session.printer.emit(
        rows,
        lambda: (
            table(
                rows,
                [
                    Column("key", lambda r: r["key"]),
                    Column("value", lambda r: r["value"] or "-"),
                    Column("source", lambda r: r["source"]),
                ],
            )
            + f"\n\n# {session.config.path}"
        ),
    )
