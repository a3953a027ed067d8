"""The base images a Dockerfile starts from, read the way BuildKit and buildah
read its ``FROM`` lines.

A build never pulls its own base images: the platform fetches them before
the build starts (bases.py), by digest, and hands them to the build
read-only, so the build needs no route to any registry and no credentials.
That needs the list of images the Dockerfile names:

- instructions are case-insensitive; a backslash at the end of a line
  continues the instruction (the default escape character; a ``# escape=``
  parser directive may change it to a backtick); comment lines are skipped;
- ``FROM [--platform=…] IMAGE [AS NAME]``; ``IMAGE`` may use ``$VAR`` or
  ``${VAR}`` (also ``${VAR:-default}``) from the ``ARG``s declared before the
  first ``FROM`` (their defaults, overridden by the build's arguments);
- an ``IMAGE`` that names an earlier stage, and ``scratch``, are not images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: Longest Dockerfile read (a Dockerfile is instructions, not data).
MAX_BYTES = 1024 * 1024
_DIRECTIVE = re.compile(r"#\s*escape\s*=\s*([\\`])\s*$", re.IGNORECASE)
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuations joined."""
    escape = "\\"
    lines = text.splitlines()
    for line in lines:
        # Parser directives come first, before any instruction or comment.
        directive = _DIRECTIVE.match(line.strip())
        if directive:
            escape = directive.group(1)
            continue
        break
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in lines:
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue
        if not pending and not stripped:
            continue
        if stripped.endswith(escape):
            pending += stripped[: -len(escape)] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        if whole:
            word, _, rest = whole.partition(" ")
            found.append((word.upper(), rest.strip()))
    if pending.strip():
        word, _, rest = pending.strip().partition(" ")
        found.append((word.upper(), rest.strip()))
    return found


def base_images(text: str, build_args: Mapping[str, str]) -> list[str]:
    """The images the Dockerfile's ``FROM`` lines name, in order, without
    repeats, stages or ``scratch``."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    seen_from = False
    for instruction, rest in instructions(text):
        if instruction == "ARG" and not seen_from:
            for declaration in rest.split():
                name, has_default, default = declaration.partition("=")
                if name in build_args:
                    args[name] = build_args[name]
                elif has_default:
                    args[name] = default.strip("\"'")
        elif instruction == "FROM":
            seen_from = True
            words = [word for word in rest.split() if not word.startswith("--")]
            if not words:
                continue
            image = _expand(words[0], args)
            if image.lower() not in stages and image != "scratch" and image not in images:
                images.append(image)
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
    return images


def _expand(word: str, args: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        found = args.get(name, "")
        return found if found else (default or "")

    return _VARIABLE.sub(value, word)
