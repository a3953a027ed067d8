"""``dodil ignite secret``: credentials that image sources name.

A secret holds a user name and a password (or token) for a container
registry (``app deploy --image … --registry-secret NAME``) or a git host
(``--git-url … --git-secret NAME``), and the hosts it is for (``--host``,
repeatable): the platform sends it to those hosts only. The password is
stored encrypted and never shown again; ``list`` shows names, user names
and hosts.
"""

from __future__ import annotations

import sys

import click
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.errors import UsageError
from dodil_cli.ids import check_label
from dodil_cli.options import common_options, pass_session
from dodil_cli.session import Session
from dodil_cli.views import secret_list


@click.group("secret")
def secret_group() -> None:
    """Create, list and delete the registry and git credentials image apps use."""


@secret_group.command("create")
@click.argument("name", metavar="NAME")
@click.option(
    "--username", default="", metavar="USER", help="User name at the registry or git host."
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password or token from standard input (recommended).",
)
@click.option(
    "--password",
    metavar="TEXT",
    help="The password or token (visible to other local users in the process list).",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="HOST[:PORT]",
    help="A registry or git host the secret is for, as image references and git URLs"
    " name it (repeatable, at least one); it is sent to no other host.",
)
@click.option("--replace", is_flag=True, help="Replace a secret of that name.")
@common_options
@pass_session
def create(
    session: Session,
    name: str,
    username: str,
    password_stdin: bool,
    password: str | None,
    hosts: tuple[str, ...],
    replace: bool,
) -> None:
    """Store credentials under NAME for the --host hosts; the password is
    never shown again."""
    if password_stdin == (password is not None):
        raise UsageError("give the password with exactly one of --password-stdin or --password")
    if not hosts:
        raise UsageError(
            "name the registry or git host the secret is for with --host (repeatable):"
            " it is sent to no other host"
        )
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    request = compute.CreateSecretRequest(
        organization_name=session.require_organization(),
        name=check_label(name, "secret name"),
        username=username,
        password=password or "",
        replace=replace,
        hosts=list(hosts),
    )
    secret = session.client.call("CreateSecret", request).secret
    session.printer.emit(secret, f"Stored secret {secret.name}.")


@secret_group.command("list")
@common_options
@pass_session
def list_(session: Session) -> None:
    """List the organization's secrets (names and user names only)."""
    request = compute.ListSecretsRequest(organization_name=session.require_organization())
    secrets = list(session.client.call("ListSecrets", request).secrets)
    session.printer.emit(secrets, lambda: secret_list(secrets))


@secret_group.command("delete")
@click.argument("name", metavar="NAME")
@common_options
@pass_session
def delete(session: Session, name: str) -> None:
    """Delete a secret; versions already built keep their images."""
    request = compute.DeleteSecretRequest(
        organization_name=session.require_organization(), name=check_label(name, "secret name")
    )
    session.client.call("DeleteSecret", request)
    session.printer.emit({"name": name}, f"Deleted secret {name}.")
