"""Ids on the command line: ``org:name`` for apps, ``org:ID`` for executions.

The wire uses ``org/name`` with the two parts in separate request fields; the
CLI joins them with a colon, and the ``org:`` prefix may be left out once a
default organization is configured. Organization and app names are DNS labels
so they fit hostnames (``<app>-<org>.ignite...``) and Kubernetes names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dodil_cli.errors import UsageError

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# Execution ids are ULIDs, but older or foreign ids may differ: accept any
# token that cannot be confused with a path or a flag.
_EXECUTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def is_dns_label(value: str) -> bool:
    """Whether ``value`` is a lower-case DNS label (1-63 chars, a-z 0-9 -)."""
    return _DNS_LABEL.fullmatch(value) is not None


def check_label(value: str, what: str) -> str:
    """Return ``value`` if it is a DNS label, else raise UsageError naming ``what``."""
    if not is_dns_label(value):
        raise UsageError(
            f"invalid {what} {value!r}: use lower-case letters, digits and '-' "
            "(at most 63, starting and ending with a letter or digit)"
        )
    return value


def check_organization(value: str) -> str:
    """Return ``value`` if it is a valid organization name, else raise UsageError."""
    return check_label(value, "organization")


@dataclass(frozen=True)
class AppRef:
    """An app named on the command line."""

    organization: str
    name: str

    def __str__(self) -> str:
        return f"{self.organization}:{self.name}"

    @property
    def wire_id(self) -> str:
        """The ``org/name`` form used by the API."""
        return f"{self.organization}/{self.name}"


@dataclass(frozen=True)
class ExecutionRef:
    """An execution named on the command line."""

    organization: str
    execution_id: str

    def __str__(self) -> str:
        return f"{self.organization}:{self.execution_id}"


def _split(text: str, default_org: str | None, what: str, example: str) -> tuple[str, str]:
    # The wire form org/name is accepted too: ids copied from `-o json`
    # output (AppMeta.id) use it.
    separator = ":" if ":" in text else "/" if "/" in text else ""
    if separator:
        org, _, rest = text.partition(separator)
        if ":" in rest or "/" in rest:
            raise UsageError(f"invalid {what} id {text!r}: expected {example}")
    else:
        if not default_org:
            raise UsageError(
                f"{what} id {text!r} has no organization: write {example} "
                "or set a default with 'dodil ignite config set organization ORG'"
            )
        org, rest = default_org, text
    if not org or not rest:
        raise UsageError(f"invalid {what} id {text!r}: expected {example}")
    check_organization(org)
    return org, rest


def parse_app_ref(text: str, default_org: str | None) -> AppRef:
    """Parse ``org:name``, ``org/name`` or (with a default org) ``name``."""
    org, name = _split(text.strip(), default_org, "app", "ORG:NAME")
    if not is_dns_label(name):
        raise UsageError(
            f"invalid app name {name!r}: use lower-case letters, digits and '-' "
            "(at most 63, starting and ending with a letter or digit)"
        )
    return AppRef(org, name)


def parse_execution_ref(text: str, default_org: str | None) -> ExecutionRef:
    """Parse ``org:EXECUTION_ID`` or (with a default org) ``EXECUTION_ID``."""
    org, execution_id = _split(text.strip(), default_org, "execution", "ORG:EXECUTION_ID")
    if not _EXECUTION_ID.fullmatch(execution_id):
        raise UsageError(f"invalid execution id {execution_id!r}")
    return ExecutionRef(org, execution_id)
