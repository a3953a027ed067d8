"""``dodil auth service-account``: an organization's machine identities and
their roles.

A service account's client secret exists in clear only in the answer to
CreateServiceAccount (the server keeps a hash of it), so ``create`` prints
it on stdout once and nowhere else: not in a progress line, not in a file.
Every other command shows accounts without it, as the API returns them.

An account's id is its client id, ``NAME@ORG``: ``create -o json`` gives it
as ``id`` and ``serviceAccountId`` (and the secret as ``secret``) beside the
API's own fields, for setup scripts written against either form. Roles are
granted as ``grant-role ID SERVICE ROLE``, where SERVICE names the
authorization service that defines the role (:data:`AUTHORIZATION_SERVICE`
for Ignite's roles, spelt ``ignite.developer``), or as the shorter
``grant-role ID developer``.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from google.protobuf.message import Message

from dodil_cli.errors import UsageError
from dodil_cli.ids import check_organization, is_dns_label
from dodil_cli.options import common_options, pass_session
from dodil_cli.output import Column, fields, info, message_to_dict, table, warn
from dodil_cli.session import Session
from dodil_cli.views import account_detail, account_list, roles_text

#: Role names on the command line, as the Role enum's values without ``ROLE_``.
ROLES = ("admin", "developer", "invoker", "viewer")

#: The authorization service that defines Ignite's roles, as the
#: three-argument ``grant-role ID SERVICE ROLE`` names it.
AUTHORIZATION_SERVICE = "ignite-authorization-service"

#: The prefix of a role's qualified name: ``ignite.developer``.
ROLE_PREFIX = "ignite."

#: What each role may do, for ``list-roles`` (docs/identity.md has the details).
ROLE_DESCRIPTIONS = {
    "admin": "everything in the organization, including its accounts and roles",
    "developer": "create, change, publish and delete apps; read their env",
    "invoker": "invoke apps; read and cancel executions; read logs",
    "viewer": "read apps, versions, executions and logs (never env values)",
}


def parse_role(text: str) -> str:
    """A role given as ``developer``, ``ignite.developer`` or ``ROLE_DEVELOPER``,
    as its short name; UsageError naming the valid roles otherwise."""
    name = text.strip().lower()
    name = name.removeprefix(ROLE_PREFIX).removeprefix("role_")
    if name not in ROLES:
        valid = ", ".join(ROLE_PREFIX + r for r in ROLES)
        raise UsageError(f"unknown role {text!r} in {AUTHORIZATION_SERVICE}: use one of {valid}")
    return name


def parse_role_arguments(args: tuple[str, ...]) -> str:
    """The role of ``ROLE`` or ``SERVICE ROLE``, the service checked."""
    if len(args) == 1:
        return parse_role(args[0])
    if len(args) == 2:
        service, role = args
        if service != AUTHORIZATION_SERVICE:
            raise UsageError(
                f"unknown authorization service {service!r}: use {AUTHORIZATION_SERVICE}"
            )
        return parse_role(role)
    raise UsageError("expected ID ROLE or ID SERVICE ROLE")


def _role_option(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    return tuple(parse_role(v) for v in values)


def account_data(account: identity.ServiceAccount) -> dict[str, Any]:
    """An account as ``-o json`` prints it: the API's fields and its ``id``."""
    return {"id": account.client_id, **message_to_dict(account)}


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
    callback=_role_option,
    metavar="ROLE",
    help="Role to grant at once, e.g. developer or ignite.developer (repeatable).",
)
@click.option("--description", default="", help="What the account is for.")
@common_options
@pass_session
def create(session: Session, name: str, roles: tuple[str, ...], description: str) -> None:
    """Create a service account and print its id (client id) and secret.

    The secret is shown only now: Ignite keeps a hash of it, so it cannot
    be shown again. Losing it means deleting the account and creating a new
    one. With -o json the id is also given as id and serviceAccountId, the
    secret as secret.
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
        roles=[role_label(r) for r in dict.fromkeys(roles)],
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
    document = {
        **message_to_dict(response),
        "id": account.client_id,
        "serviceAccountId": account.client_id,
        "secret": response.client_secret,
    }
    session.printer.emit(
        document,
        lambda: fields(
            [("Client id", account.client_id), ("Client secret", response.client_secret)]
        ),
    )


@service_account_group.command("list")
@common_options
@pass_session
def list_(session: Session) -> None:
    """List the organization's service accounts with their ids (never their secrets)."""
    org = session.require_organization()
    request = identity.ListServiceAccountsRequest(organization_name=org)
    accounts = list(
        session.client.call("ListServiceAccounts", request, service="identity").service_accounts
    )
    session.printer.emit([account_data(a) for a in accounts], lambda: account_list(accounts))


@service_account_group.command("delete")
@click.argument("name", metavar="ID")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@common_options
@pass_session
def delete(session: Session, name: str, yes: bool) -> None:
    """Delete a service account (ID = NAME@ORG, or NAME); its tokens stop working at once."""
    org, account_name = account_ref(session, name)
    # Asking only on a terminal: scripts and CI have no one to answer.
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete service account {account_name}@{org}?", abort=True, err=True)
    request = identity.DeleteServiceAccountRequest(organization_name=org, name=account_name)
    response = session.client.call("DeleteServiceAccount", request, service="identity")
    session.printer.emit(response, f"Deleted service account {response.client_id}.")


def _show_changed(session: Session, method: str, request: Message) -> None:
    account = session.client.call(method, request, service="identity").service_account
    session.printer.emit(account_data(account), lambda: account_detail(account))


@service_account_group.command("list-roles")
@common_options
@pass_session
def list_roles(session: Session) -> None:
    """List the roles that can be granted, with their authorization service."""
    roles = [
        {"service": AUTHORIZATION_SERVICE, "role": ROLE_PREFIX + name, "description": text}
        for name, text in ROLE_DESCRIPTIONS.items()
    ]
    session.printer.emit(
        roles,
        lambda: table(
            roles,
            [
                Column("service", lambda r: r["service"]),
                Column("role", lambda r: r["role"]),
                Column("may", lambda r: r["description"]),
            ],
        ),
    )


@service_account_group.command("grant-role")
@click.argument("name", metavar="ID")
@click.argument("role_args", metavar="[SERVICE] ROLE", nargs=-1, required=True)
@common_options
@pass_session
def grant_role(session: Session, name: str, role_args: tuple[str, ...]) -> None:
    """Give a service account a role.

    \b
    dodil auth service-account grant-role ci@acme ignite-authorization-service ignite.developer
    dodil auth service-account grant-role ci developer
    ('list-roles' shows the roles.)
    """
    role = parse_role_arguments(role_args)
    org, account_name = account_ref(session, name)
    request = identity.GrantRoleRequest(
        organization_name=org, name=account_name, role=role_label(role)
    )
    _show_changed(session, "GrantRole", request)


@service_account_group.command("revoke-role")
@click.argument("name", metavar="ID")
@click.argument("role_args", metavar="[SERVICE] ROLE", nargs=-1, required=True)
@common_options
@pass_session
def revoke_role(session: Session, name: str, role_args: tuple[str, ...]) -> None:
    """Take a role away from a service account; it applies to tokens already issued."""
    role = parse_role_arguments(role_args)
    org, account_name = account_ref(session, name)
    request = identity.RevokeRoleRequest(
        organization_name=org, name=account_name, role=role_label(role)
    )
    _show_changed(session, "RevokeRole", request)
