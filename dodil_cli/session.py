"""One run of the CLI: the settings in force and the things built from them.

Flags shared by every command (``-o``, ``--endpoint``, ``--plaintext``,
``--org``, ``--verbose``) are recorded here as click parses them; the config
file, the environment and the credentials are read only when a command needs
them, so ``--help`` and shell completion stay fast and work without a config.
"""

from __future__ import annotations

from functools import cached_property

from dodil.ignite.v1 import ignite_identity_pb2 as identity

from dodil_cli.client import Client
from dodil_cli.config import Config, key
from dodil_cli.credentials import Credentials, load_credentials, store
from dodil_cli.endpoint import Endpoint, parse_endpoint
from dodil_cli.errors import CliError, UsageError
from dodil_cli.ids import (
    AppRef,
    ExecutionRef,
    check_organization,
    parse_app_ref,
    parse_execution_ref,
)
from dodil_cli.oauth import IssuedToken, request_token
from dodil_cli.output import Printer
from dodil_cli.progress import Progress
from dodil_cli.views import hide_env_values

#: The exit code of UNAUTHENTICATED (docs/cli.md): also for credentials
#: that belong to another endpoint.
EXIT_UNAUTHENTICATED = 6


class Session:
    """Settings of this run, resolved flag > environment > config file > default."""

    def __init__(self) -> None:
        self.output_flag: str | None = None
        self.endpoint_flag: str | None = None
        self.plaintext_flag = False
        self.org_flag: str | None = None
        self.verbose = False
        #: Show app env values (hidden in every command's output otherwise).
        self.show_env = False
        self._client: Client | None = None

    @cached_property
    def config(self) -> Config:
        """The config file's contents."""
        return Config.load()

    def setting(self, name: str) -> str:
        """The value of a config key without flags (env > file > default)."""
        return self.config.effective(name)[0]

    @property
    def output(self) -> str:
        """The output format: table, json or yaml."""
        value = self.output_flag or self.setting("output")
        return key("output").check(value)

    @cached_property
    def endpoint(self) -> Endpoint:
        """The API endpoint: the flag, else the configured one (environment,
        file), else the one the stored credentials are for, else the default."""
        if self.endpoint_flag:
            return parse_endpoint(self.endpoint_flag)
        value, source = self.config.effective("api_endpoint")
        if source == "default":
            bound = self.stored_endpoint()
            if bound:
                return parse_endpoint(bound)
        return parse_endpoint(value)

    def stored_endpoint(self) -> str:
        """The endpoint stored credentials are bound to ("" when none)."""
        credentials = self.credentials
        return credentials.endpoint if credentials is not None else ""

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS."""
        forced = self.plaintext_flag or key("plaintext").check(self.setting("plaintext")) == "true"
        return self.endpoint.use_tls(force_plaintext=forced)

    @property
    def organization(self) -> str | None:
        """The default organization, if any."""
        value = self.org_flag or self.setting("organization")
        return check_organization(value) if value else None

    @cached_property
    def credentials(self) -> Credentials | None:
        """The credentials in force, if any."""
        return load_credentials()

    def bearer_token(self) -> str | None:
        """The access token to send, exchanging client credentials when due."""
        credentials = self.credentials
        if credentials is None:
            return None
        if credentials.endpoint and credentials.endpoint != self.endpoint.target:
            # Never hand a platform's credentials (or, on renewal, the client
            # secret) to another one.
            raise CliError(
                f"the stored credentials are for {credentials.endpoint}, not "
                f"{self.endpoint.target}: pass --endpoint {credentials.endpoint}, or run "
                f"'dodil login --endpoint {self.endpoint.target}'",
                exit_code=EXIT_UNAUTHENTICATED,
            )
        if credentials.needs_renewal():
            issued = self.issue_token(
                credentials.client_id, credentials.client_secret, credentials.token_url
            )
            credentials = credentials.renewed(issued.access_token, issued.expires_in)
            store(credentials)
            self.__dict__["credentials"] = credentials
        return credentials.token

    def issue_token(self, client_id: str, client_secret: str, token_url: str = "") -> IssuedToken:
        """Exchange client credentials for an access token.

        At ``token_url`` (an OAuth 2.0 token endpoint) when given, else with
        IdentityService.IssueToken on the API endpoint.
        """
        if token_url:
            return request_token(token_url, client_id, client_secret)
        anonymous = Client(self.endpoint, tls=self.tls, token=None)
        try:
            request = identity.IssueTokenRequest(client_id=client_id, client_secret=client_secret)
            response = anonymous.call("IssueToken", request, service="identity")
        finally:
            anonymous.close()
        return IssuedToken(response.access_token, int(response.expires_in))

    @property
    def client(self) -> Client:
        """The API client, connected on first use."""
        if self._client is None:
            self._client = Client(self.endpoint, tls=self.tls, token=self.bearer_token())
        return self._client

    @cached_property
    def printer(self) -> Printer:
        """Prints results in the chosen output format."""
        return Printer(self.output, redact=None if self.show_env else hide_env_values)

    @cached_property
    def progress(self) -> Progress:
        """Reports slow steps on stderr."""
        return Progress()

    def app_ref(self, text: str) -> AppRef:
        """Parse an app id, filling in the default organization."""
        return parse_app_ref(text, self.organization)

    def execution_ref(self, text: str) -> ExecutionRef:
        """Parse an execution id, filling in the default organization."""
        return parse_execution_ref(text, self.organization)

    def require_organization(self) -> str:
        """The organization for commands that take no app id, or UsageError."""
        org = self.organization
        if not org:
            raise UsageError(
                "no organization: pass --org ORG or set a default with "
                "'dodil ignite config set organization ORG'"
            )
        return org

    def close(self) -> None:
        """Release the connection."""
        if self._client is not None:
            self._client.close()
            self._client = None
