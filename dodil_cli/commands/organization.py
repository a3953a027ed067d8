"""``dodil auth org``: the platform's organizations (tenants).

Creating and deleting organizations is the platform administrator's job (a
fresh platform has none); any caller may list the organizations it can see.
"""

from __future__ import annotations

import sys

import click
from dodil.ignite.v1 import ignite_identity_pb2 as identity

from dodil_cli.ids import check_organization
from dodil_cli.options import common_options, pass_session
from dodil_cli.session import Session
from dodil_cli.views import organization_list


@click.group("org")
def org_group() -> None:
    """Create, list and delete organizations (creating and deleting: platform admin)."""


@org_group.command("create")
@click.argument("name", metavar="NAME")
@click.option("--display-name", default="", metavar="TEXT", help="A human name.")
@common_options
@pass_session
def create(session: Session, name: str, display_name: str) -> None:
    """Create an organization named NAME (a DNS label)."""
    request = identity.CreateOrganizationRequest(
        name=check_organization(name), display_name=display_name
    )
    organization = session.client.call(
        "CreateOrganization", request, service="identity"
    ).organization
    session.printer.emit(organization, f"Created organization {organization.name}.")


@org_group.command("list")
@common_options
@pass_session
def list_(session: Session) -> None:
    """List the organizations the caller can see."""
    response = session.client.call(
        "ListOrganizations", identity.ListOrganizationsRequest(), service="identity"
    )
    organizations = list(response.organizations)
    session.printer.emit(organizations, lambda: organization_list(organizations))


@org_group.command("delete")
@click.argument("name", metavar="NAME")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@common_options
@pass_session
def delete(session: Session, name: str, yes: bool) -> None:
    """Delete an organization with its apps and service accounts."""
    check_organization(name)
    # Asking only on a terminal: scripts and CI have no one to answer.
    if not yes and sys.stdin.isatty():
        click.confirm(
            f"Delete organization {name} with all its apps and service accounts?",
            abort=True,
            err=True,
        )
    request = identity.DeleteOrganizationRequest(organization_name=name)
    response = session.client.call("DeleteOrganization", request, service="identity")
    session.printer.emit(response, f"Deleted organization {name}.")
