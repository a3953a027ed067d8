"""Tool names of apps: ``ignite_{org}_{app}``, and back.

Organization and app names are DNS labels (``[a-z0-9-]``), but a hyphen in a
tool name trips some MCP clients and models, so every ``-`` becomes ``_``:
app ``hello-world`` of ``acme-corp`` is the tool
``ignite_acme_corp_hello_world``.

The mapping alone is not reversible (``ignite_a_b_c`` could be ``a``/``b-c``
or ``a-b``/``c``), but a tool is always resolved *within the caller's
organization*: the org part is known, so the name must start with exactly
that organization's prefix, and what follows it maps back to the one app
name it came from (DNS labels hold no ``_``, so ``_`` → ``-`` is exact).
"""

from __future__ import annotations

import re

#: Every tool name starts with this.
TOOL_PREFIX = "ignite_"

# A DNS label as the platform stores app names.
_APP_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _encode(label: str) -> str:
    return label.replace("-", "_")


def tool_name(organization: str, app: str) -> str:
    """The tool name of ``organization``'s app ``app``."""
    return f"{TOOL_PREFIX}{_encode(organization)}_{_encode(app)}"


def app_for_tool(organization: str, name: str) -> str | None:
    """The app of ``organization`` that the tool ``name`` stands for, or None
    when the name is not one of that organization's tool names."""
    prefix = f"{TOOL_PREFIX}{_encode(organization)}_"
    if not name.startswith(prefix):
        return None
    app = name[len(prefix) :].replace("_", "-")
    if not _APP_NAME.fullmatch(app):
        return None
    return app
