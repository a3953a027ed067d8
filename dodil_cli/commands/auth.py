"""``dodil login``, ``logout`` and ``whoami``: the caller's identity."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from dodil.ignite.v1 import ignite_identity_pb2 as identity

from dodil_cli.credentials import (
    KIND_CLIENT,
    TOKEN_ENV,
    Credentials,
    forget,
    jwt_claims,
    store,
    store_token,
)
from dodil_cli.errors import ApiError, CliError, UsageError
from dodil_cli.ids import is_dns_label
from dodil_cli.options import common_options, pass_session
from dodil_cli.output import fields, info, message_to_dict, warn
from dodil_cli.session import EXIT_UNAUTHENTICATED, Session
from dodil_cli.views import timestamp

SECRET_ENV = "DODIL_CLIENT_SECRET"


def _secret_or_token(value: str | None, prompt: str, env: str | None = None) -> str:
    """A secret from the flag, ``-`` (stdin), an environment variable or a prompt."""
    if value is None and env:
        value = os.environ.get(env) or None
    if value == "-" or (value is None and not sys.stdin.isatty()):
        value = sys.stdin.readline()
    elif value is None:
        value = click.prompt(prompt, hide_input=True, err=True)
    value = value.strip()
    if any(c.isspace() for c in value):
        raise UsageError(f"{prompt.lower()} cannot contain spaces or newlines")
    return value


@click.command("login")
@click.option("--token", help="An access token to send as 'Bearer' ('-' reads stdin).")
@click.option(
    "--client-id", metavar="ID", help="A service account's client id (name@organization)."
)
@click.option(
    "--client-secret",
    metavar="SECRET",
    help=f"Its secret ('-' reads stdin; default ${SECRET_ENV}, else a prompt).",
)
@click.option(
    "--token-url",
    metavar="URL",
    help="OAuth 2.0 token endpoint (default: IssueToken on the API endpoint).",
)
@click.option("--organization", metavar="ORG", help="Also make ORG the default organization.")
@common_options
@pass_session
def login(
    session: Session,
    token: str | None,
    client_id: str | None,
    client_secret: str | None,
    token_url: str | None,
    organization: str | None,
) -> None:
    """Store credentials for later commands.

    With --client-id (OAuth 2.0 client credentials) the secret is exchanged
    for an access token at once, which checks it, and again whenever the
    token nears its expiry. With --token the token is stored as given.
    The credentials are stored with the endpoint (--endpoint, or the
    configured one): later commands use that endpoint when none is
    configured, and refuse to send them to any other.
    DODIL_TOKEN, when set, is used instead of stored credentials.
    """
    if client_id is not None and token is not None:
        raise UsageError("log in with --token or with --client-id, not both")
    if client_id is not None:
        secret = _secret_or_token(client_secret, "Client secret", SECRET_ENV)
        if not client_id or not secret:
            raise UsageError("both a client id and a client secret are needed")
        issued = session.issue_token(client_id, secret, token_url or "")
        credentials = Credentials(
            KIND_CLIENT,
            "",
            "",
            client_id=client_id,
            client_secret=secret,
            token_url=token_url or "",
            endpoint=session.endpoint.target,
        )
        path = store(credentials.renewed(issued.access_token, issued.expires_in))
        who = client_id
        # A service account's id is name@organization: its organization is
        # the natural default when none is configured yet. Not so for the
        # platform administrator, whose "organization" holds no apps.
        _, at, org = client_id.rpartition("@")
        admin = (jwt_claims(issued.access_token) or {}).get("platform_admin") is True
        if at and not organization and is_dns_label(org) and not session.organization:
            organization = None if admin else org
    else:
        if client_secret is not None or token_url is not None:
            raise UsageError("--client-secret and --token-url go with --client-id")
        secret = _secret_or_token(token, "Access token")
        if not secret:
            raise UsageError("no token given: pass --token TOKEN or --client-id ID")
        path = store_token(secret, session.endpoint.target)
        who = "a token"
    if organization:
        session.config.set("organization", organization)
        session.config.save()
        info(f"Default organization: {organization}")
    info(f"Logged in to {session.endpoint.target} with {who}; credentials in {path}")


@click.command("logout")
@common_options
def logout() -> None:
    """Delete stored credentials."""
    if forget():
        info("Logged out.")
    else:
        info("Not logged in.")


@click.command("whoami")
@common_options
@pass_session
def whoami(session: Session) -> None:
    """Show the identity, endpoint and organization commands will use.

    With credentials, the server is asked what it makes of them.
    """
    credentials = session.credentials
    server: dict[str, Any] | None = None
    if credentials is not None:
        try:
            answer = session.client.call("WhoAmI", identity.WhoAmIRequest(), service="identity")
            server = message_to_dict(answer)
        except ApiError as exc:
            warn(f"the server did not say who you are: {exc.headline()}")
    data = {
        "endpoint": session.endpoint.target,
        "tls": session.tls,
        "organization": session.organization or "",
        "credentials": credentials.describe() if credentials else None,
        "server": server,
    }

    def readable() -> str:
        pairs = [
            ("Endpoint", f"{data['endpoint']} ({'TLS' if data['tls'] else 'plaintext'})"),
            ("Organization", str(data["organization"] or "(none)")),
        ]
        if credentials is None:
            pairs.append(("Credentials", f"none (dodil login, or {TOKEN_ENV})"))
        else:
            pairs += [(k.capitalize(), str(v)) for k, v in credentials.describe().items()]
        if server is not None:
            pairs += [
                ("Subject", server["subject"]),
                ("Member of", server["organization_name"] or "(platform)"),
                (
                    "Roles",
                    ", ".join(r.removeprefix("ROLE_").lower() for r in server["roles"]) or "-",
                ),
                ("Platform admin", "yes" if server["platform_admin"] else "no"),
                ("Token expires", timestamp(server["expires_at_ms"])),
            ]
        return fields(pairs)

    session.printer.emit(data, readable)


@click.command("status")
@common_options
@pass_session
def status(session: Session) -> None:
    """Show who is logged in, against which endpoint and organization.

    Exits 6 when no credentials are stored (or given in DODIL_TOKEN) or the
    server rejects them, so scripts can check before they start.
    """
    credentials = session.credentials
    if credentials is None:
        raise CliError(
            f"not logged in to {session.endpoint.target}: run 'dodil login' (or set {TOKEN_ENV})",
            exit_code=EXIT_UNAUTHENTICATED,
        )
    answer = session.client.call("WhoAmI", identity.WhoAmIRequest(), service="identity")
    roles = [identity.Role.Name(r).removeprefix("ROLE_").lower() for r in answer.roles]
    data = {
        "logged_in": True,
        "subject": answer.subject,
        "endpoint": session.endpoint.target,
        "tls": session.tls,
        "organization": session.organization or answer.organization_name,
        "member_of": answer.organization_name,
        "roles": roles,
        "platform_admin": answer.platform_admin,
        "expires_at_ms": answer.expires_at_ms,
        "credentials": credentials.kind,
        "credentials_source": credentials.source,
    }
    admin = " (platform admin)" if answer.platform_admin else ""
    session.printer.emit(
        data,
        lambda: fields(
            [
                ("Logged in as", answer.subject + admin),
                ("Endpoint", f"{data['endpoint']} ({'TLS' if session.tls else 'plaintext'})"),
                ("Organization", str(data["organization"] or "(none)")),
                ("Roles", ", ".join(roles) or "-"),
                ("Token expires", timestamp(answer.expires_at_ms) if answer.expires_at_ms else "-"),
                ("Credentials", f"{credentials.kind} ({credentials.source})"),
            ]
        ),
    )
