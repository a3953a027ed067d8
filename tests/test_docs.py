"""The documents tell the truth about themselves: every relative link points
at a file that exists, and no page names a document that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_MENTION = re.compile(r"\bdocs/[\w./-]+\.md\b")


def test_relative_links_and_mentions_resolve():
    missing = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for target in _LINK.findall(_CODE.sub("", text)):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)} links {target}")
        for mention in _MENTION.findall(text):
            if not (ROOT / mention).exists():
                missing.append(f"{page.relative_to(ROOT)} names {mention}")
    assert not missing, "\n".join(missing)


def test_mcp_page_does_not_say_make_run_turns_authentication_off():
    text = (ROOT / "docs" / "mcp.md").read_text(encoding="utf-8")
    assert "as `make run` does" not in text
