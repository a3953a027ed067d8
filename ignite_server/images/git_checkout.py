"""Checking out a git repository for a Dockerfile build (``from_git``).

git runs in the build sandbox of builds/subprocess_build.py, under the
build uid with the network on, and sees only the destination folder
(writable) and, for a ``file://`` URL, the repository (read-only). A
repository's own hooks never run: a clone copies none, and ``core.hooksPath``
points at ``/dev/null`` for the checkout besides. Submodules are not
fetched.

The clone fetches every branch and tag without checking out, then the ref is
looked up as a branch, then a tag, then a commit (full or abbreviated), and
that commit is checked out detached. A ref that names none of those fails
with "git ref '…' not found in <url>".

Credentials are sent as an HTTP ``Authorization`` header scoped to the
repository's host, configured through ``GIT_CONFIG_COUNT``/``KEY``/``VALUE``
environment variables: never on a command line (which other local users can
read in ``/proc``), never in the URL (which git would store in
``.git/config`` and print in errors). ``GIT_TERMINAL_PROMPT=0`` makes a
missing or refused credential fail at once instead of waiting for a prompt.

Where git connects is what was checked (core/image_artifacts.py, the
egress policy): redirects are not followed (``http.followRedirects``), so
a server cannot send the clone, or the credentials, on to another host or
to this machine's loopback, and an http(s) clone reaches the host's name
only at the addresses the check saw (``http.curloptResolve``).

A failure is told in git's own words only where those are git's: a line
that could hold what the server sent (a protocol error quoting its bytes,
a remote message) is replaced by what kind of failure it was, so an error
never echoes another service's answer.
"""

from __future__ import annotations

import asyncio
import base64
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ignite_server.builds.subprocess_build import (
    Deadline,
    Sandbox,
    StepResult,
    network_env,
    run_step,
)
from ignite_server.ports.build_pipeline import BuildFailed
from ignite_server.ports.image_builder import GitCheckout

GIT = "/usr/bin/git"
#: URL schemes a repository may be fetched with (no ``ext::``, no ssh keys of
#: the server's account).
SCHEMES = ("https", "http", "file", "git")
#: What a ref may look like: git's own rules are looser, but nothing that
#: could be read as an option or a revision expression gets through.
_REF = re.compile(r"[A-Za-z0-9._/][A-Za-z0-9._/+@-]{0,254}")
_COMMIT = re.compile(r"[0-9a-f]{4,64}")
_FULL_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


async def checkout(request: GitCheckout) -> str:
    """Clone ``request.url`` into ``request.dest`` at ``request.ref``;
    returns the full commit hash. BuildFailed for a bad URL, ref or
    credentials."""
    url = _checked_url(request.url)
    shown = _without_password(url)
    if not _REF.fullmatch(request.ref) or ".." in request.ref:
        raise BuildFailed(f"git ref {request.ref!r} not found in {shown}")
    await asyncio.to_thread(request.dest.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ignite-git-") as config_dir:
        return await _checkout(request, url, shown, Path(config_dir))


async def _checkout(request: GitCheckout, url: str, shown: str, config_dir: Path) -> str:
    await asyncio.to_thread(_write_config, config_dir)
    clone = _Clone(request, url, config_dir)
    cloned = await clone.git("clone", "--no-checkout", "--", url, str(request.dest))
    if cloned.returncode != 0:
        raise BuildFailed(f"git clone of {shown} failed: {_last_line(cloned)}")
    candidates = [f"refs/remotes/origin/{request.ref}", f"refs/tags/{request.ref}"]
    if _COMMIT.fullmatch(request.ref):
        candidates.append(request.ref)
    commit = ""
    for candidate in candidates:
        commit = await clone.commit(candidate)
        if commit:
            break
    else:
        raise BuildFailed(f"git ref {request.ref!r} not found in {shown}")
    done = await clone.git("checkout", "--quiet", "--detach", commit)
    if done.returncode != 0:
        raise BuildFailed(f"git checkout of {commit} failed: {_last_line(done)}")
    request.log(f"checked out {shown} at {request.ref} ({commit})")
    return commit


class _Clone:
    """git commands on one checkout, each a sandboxed build step."""

    def __init__(self, request: GitCheckout, url: str, config_dir: Path) -> None:
        self._request = request
        self._env = _env(request, url, config_dir / "gitconfig")
        self._deadline = Deadline(request.timeout_secs)
        local = [urlsplit(url).path] if url.startswith("file://") else []
        self._sandbox = Sandbox(
            ro_paths=[*local, config_dir], rw_paths=[request.dest], network=True
        )

    async def git(self, *argv: str, quiet: bool = False) -> StepResult:
        """Run git; its output goes to the build log unless ``quiet``, with
        anything unprintable a server may have sent replaced."""
        return await run_step(
            [GIT, *argv],
            cwd=self._request.dest,
            env=self._env,
            log=_discard if quiet else _printable(self._request.log),
            deadline=self._deadline,
            sandbox=self._sandbox,
        )

    async def commit(self, revision: str) -> str:
        """The commit ``revision`` names in the clone, or ""."""
        result = await self.git(
            "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", quiet=True
        )
        lines = [line.strip() for line in result.tail if line.strip()]
        last = lines[-1] if lines else ""
        return last if result.returncode == 0 and _FULL_COMMIT.fullmatch(last) else ""


def _discard(_line: str) -> None:
    pass


def _printable(log: Callable[[str], None]) -> Callable[[str], None]:
    def write(line: str) -> None:
        log("".join(c if c.isprintable() else "?" for c in line))

    return write


def _checked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or (parts.scheme != "file" and not parts.hostname):
        raise BuildFailed(
            f"git repository URL {_without_password(url)!r} is not one of "
            f"{', '.join(s + '://' for s in SCHEMES)}"
        )
    return url


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _env(request: GitCheckout, url: str, global_config: Path) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(global_config),
        **network_env(),
    }
    parts = urlsplit(url)
    settings: list[tuple[str, str]] = []
    if parts.scheme in ("http", "https") and request.addresses and parts.hostname:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        pinned = ",".join(f"[{a}]" if ":" in a else a for a in request.addresses)
        settings.append(("http.curloptResolve", f"{parts.hostname}:{port}:{pinned}"))
    if request.credentials is not None:
        token = f"{request.credentials.username}:{request.credentials.password}"
        header = "Authorization: Basic " + base64.b64encode(token.encode()).decode()
        settings.append((f"http.{parts.scheme}://{parts.netloc}/.extraHeader", header))
    env["GIT_CONFIG_COUNT"] = str(len(settings))
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


#: The checkout's git configuration (as the "global" file: git hands the
#: environment's configuration to neither ``upload-pack`` of a local
#: repository nor anything else run in another repository).
GLOBAL_CONFIG = """\
[core]
\thooksPath = /dev/null
[safe]
\t# A file:// repository belongs to another uid than the sandbox's.
\tdirectory = *
[protocol "ext"]
\tallow = never
[http]
\t# Where the clone goes was checked; a redirect would go elsewhere.
\tfollowRedirects = false
"""


def _write_config(folder: Path) -> None:
    (folder / "gitconfig").write_text(GLOBAL_CONFIG)
    # Readable by the build uid the sandbox runs git as.
    folder.chmod(0o755)


def _last_line(result: StepResult) -> str:
    """git's reason: its first ``fatal:`` line, else its last line, told as
    a kind of failure when it could quote the server (module docstring)."""
    lines = [line.strip() for line in result.tail if line.strip()]
    fatal = [line for line in lines if line.startswith("fatal:")]
    line = fatal[0] if fatal else (lines[-1] if lines else f"exit status {result.returncode}")
    return _told(line)


#: Failures told by kind, first match wins: (what the line contains, the
#: words used instead). Lines that may carry the server's own words
#: (protocol errors quote its bytes; remote errors are its text) are never
#: repeated.
_KINDS = (
    (("could not resolve host", "unable to look up", "name or service not known"),
     "fatal: the host name does not resolve"),
    (("connection refused", "couldn't connect", "failed to connect", "unable to connect"),
     "fatal: the connection was refused"),
    (("timed out", "timeout"), "fatal: the server did not answer in time"),
    (("authentication failed", "could not read username", "could not read password",
      "403", "401", "access denied", "permission denied"),
     "fatal: the server refused the credentials, or wants some (--git-secret)"),
    (("ssl", "tls", "certificate", "gnutls"),
     "fatal: TLS failed (the certificate is not trusted, or the server does not speak TLS)"),
    (("not found", "404", "does not appear to be a git repository", "repository not found"),
     "fatal: no git repository at that URL"),
    (("redirect",), "fatal: the server redirected the clone elsewhere (not followed)"),
)  # fmt: skip
#: git's own messages about the URL or the ref, safe to repeat as they are.
_OWN = re.compile(r"fatal: (?:invalid|unable to parse|couldn't find remote ref)[^\x00-\x1f]*")


def _told(line: str) -> str:
    lowered = line.lower()
    if _OWN.fullmatch(line) and line.isprintable():
        return line
    for needles, told in _KINDS:
        if any(needle in lowered for needle in needles):
            return told
    return "fatal: the server's answer is not git's (a protocol error)"
