"""``dodil auth service-account``: an organization's machine identities and
their roles.

A service account's client secret exists in clear only in the answer to
CreateServiceAccount (the server keeps a hash of it), so ``create`` prints
it on stdout once and nowhere else: not in a progress line, not in a file.
Every other command shows accounts without it, as the API returns them.
"""

from __future__ import annotations

import sys

import click
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from google.protobuf.message import Message

from dodil_cli.errors import UsageError
from dodil_cli.ids import check_organization, is_dns_label
from dodil_cli.options import common_options, pass_session
from dodil_cli.output import fields, info, warn
from dodil_cli.session import Session
from dodil_cli.views import account_detail, account_list, roles_text

#: Role names on the command line, as the Role enum's values without ``ROLE_``.
ROLES = ("admin", "developer", "invoker", "viewer")

_ROLE = click.Choice(ROLES, case_sensitive=False)


def role_label(name: str) -> str:
    """The Role enum's name for a role given as ``developer``: ``ROLE_DEVELOPER``.

    Request constructors take enum names as well as numbers.
    """
    return f"ROLE_{name.upper()}"


def account_ref(session: Session, text: str) -> tuple[str, str]:
    """(organization, name) of an account given as ``NAME`` or ``NAME@ORG``.

    ``NAME@ORG`` is the client id, so an id copied from ``list`` works as is;
    a bare name takes ``--org`` or the default organization.
    """
    name, at, org = text.strip().rpartition("@")
    if not at:
        name, org = org, session.require_organization()
    else:
        check_organization(org)
        if session.org_flag and session.org_flag != org:
            raise UsageError(f"{text!r} belongs to {org}, but --org says {session.org_flag}")
    if not is_dns_label(name):
        raise UsageError(
            f"invalid service account name {name!r}: use lower-case letters, digits and '-' "
            "(at most 63, starting and ending with a letter or digit)"
        )
    return org, name


@click.group("service-account")
def service_account_group() -> None:
    """Create, list and delete service accounts; grant and revoke their roles.

    Accounts belong to an organization (--org, or the default organization)
    and log in with 'dodil login --client-id NAME@ORG'. Managing them needs
    the organization's admin role, or the platform administrator.
    """


@service_account_group.command("create")
@click.argument("name", metavar="NAME")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=_ROLE,
    help="Role to grant at once (repeatable).",
)
@click.option("--description", default="", help="What the account is for.")
@common_options
@pass_session
def create(session: Session, name: str, roles: tuple[str, ...], description: str) -> None:
    """Create a service account and print its client id and secret.

    The secret is shown only now: Ignite keeps a hash of it, so it cannot
    be shown again. Losing it means deleting the account and creating a new
    one.
    """
    org, account_name = account_ref(session, name)
    if not roles:
        warn(
            "no --role given: the account has no permissions until one is granted "
            "('dodil auth service-account grant-role')"
        )
    request = identity.CreateServiceAccountRequest(
        organization_name=org,
        name=account_name,
        # dict.fromkeys drops a role given twice and keeps the order given.
        roles=[role_label(r) for r in dict.fromkeys(r.lower() for r in roles)],
        description=description,
    )
    response = session.client.call("CreateServiceAccount", request, service="identity")
    account = response.service_account
    # The readable form is data too (stdout), so `| grep` and copy-paste
    # work; the advice about keeping the secret goes to stderr.
    if not session.printer.structured:
        roles_given = roles_text(account.roles) if account.roles else "no roles"
        info(
            f"Created service account {account.client_id} ({roles_given}). "
            "Store the secret now: it is not shown again."
        )
    session.printer.emit(
        response,
        lambda: fields(
            [("Client id", account.client_id), ("Client secret", response.client_secret)]
        ),
    )


@service_account_group.command("list")
@common_options
@pass_session
def list_(session: Session) -> None:
    """List the organization's service accounts (never their secrets)."""
    org = session.require_organization()
    request = identity.ListServiceAccountsRequest(organization_name=org)
    accounts = list(
        session.client.call("ListServiceAccounts", request, service="identity").service_accounts
    )
    session.printer.emit(accounts, lambda: account_list(accounts))


@service_account_group.command("delete")
@click.argument("name", metavar="NAME")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@common_options
@pass_session
def delete(session: Session, name: str, yes: bool) -> None:
    """Delete a service account; its tokens stop working at once."""
    org, account_name = account_ref(session, name)
    # Asking only on a terminal: scripts and CI have no one to answer.
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete service account {account_name}@{org}?", abort=True, err=True)
    request = identity.DeleteServiceAccountRequest(organization_name=org, name=account_name)
    response = session.client.call("DeleteServiceAccount", request, service="identity")
    session.printer.emit(response, f"Deleted service account {response.client_id}.")


def _show_changed(session: Session, method: str, request: Message) -> None:
    account = session.client.call(method, request, service="identity").service_account
    session.printer.emit(account, lambda: account_detail(account))


@service_account_group.command("grant-role")
@click.argument("name", metavar="NAME")
@click.argument("role", metavar="ROLE", type=_ROLE)
@common_options
@pass_session
def grant_role(session: Session, name: str, role: str) -> None:
    """Give a service account a role (admin, developer, invoker, viewer)."""
    org, account_name = account_ref(session, name)
    request = identity.GrantRoleRequest(
        organization_name=org, name=account_name, role=role_label(role)
    )
    _show_changed(session, "GrantRole", request)


@service_account_group.command("revoke-role")
@click.argument("name", metavar="NAME")
@click.argument("role", metavar="ROLE", type=_ROLE)
@common_options
@pass_session
def revoke_role(session: Session, name: str, role: str) -> None:
    """Take a role away from a service account; it applies to tokens already issued."""
    org, account_name = account_ref(session, name)
    request = identity.RevokeRoleRequest(
        organization_name=org, name=account_name, role=role_label(role)
    )
    _show_changed(session, "RevokeRole", request)
