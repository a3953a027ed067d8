"""Checking out a git repository for a Dockerfile build (``from_git``).

git runs as a step of the build's jail (builds/jail.py): as the build's uid,
in the build's network namespace, where the repository's host is reachable
only through the egress proxy (HTTP(S) through ``http_proxy``; the ``git``
protocol through ``GIT_PROXY_COMMAND``, a CONNECT through the same proxy),
and only when the policy allows that host (a public one, or one the operator
allowed). The clone is ``/build/work/repo``; the server never reads it: the build
sees its context at ``/build/work/repo/<context_dir>`` inside the jail, where a
symbolic link can lead nowhere but into the jail's own view. A repository's
own hooks never run: a clone copies none, and ``core.hooksPath`` points at
``/dev/null`` besides. Submodules are not fetched.

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

Where git connects is what was checked: the egress proxy resolves the
host once, refuses internal addresses the operator did not allow
(``--egress-allow``) and connects to the addresses it checked. Redirects are
not followed (``http.followRedirects``), so a server cannot send the clone,
or the credentials (which a secret carries only for its own hosts,
core/image_artifacts.py), on to another host.

A failure is told in git's own words only where those are git's: a line
that could hold what the server sent (a protocol error quoting its bytes,
a remote message) is replaced by what kind of failure it was, so an error
never echoes another service's answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ignite_server.builds.egress import PROXY_HOST, PROXY_PORT
from ignite_server.builds.jail import WORK, BuildJail
from ignite_server.builds.subprocess_build import StepResult
from ignite_server.ports.build_pipeline import BuildFailed
from ignite_server.ports.image_builder import GitContext

GIT = "/usr/bin/git"
#: URL schemes a repository may be fetched with (no ``ext::``, no ``file://``
#: naming the server's folders, no ssh keys of the server's account).
SCHEMES = ("https", "http", "git")
#: Where the clone is, inside the jail.
REPO = f"{WORK}/repo"
#: Where the server's git configuration is, inside the jail.
CONFIG_DIR = "/ignite/git"
#: What a ref may look like: git's own rules are looser, but nothing that
#: could be read as an option or a revision expression gets through.
_REF = re.compile(r"[A-Za-z0-9._/][A-Za-z0-9._/+@-]{0,254}")
_COMMIT = re.compile(r"[0-9a-f]{4,64}")
_FULL_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


async def checkout(jail: BuildJail, source: GitContext) -> str:
    """Clone ``source`` into REPO at its ref; returns the full commit hash.
    BuildFailed for a bad URL, ref or credentials."""
    url = _checked_url(source.url)
    shown = _without_password(url)
    if source.ref and (not _REF.fullmatch(source.ref) or ".." in source.ref):
        raise BuildFailed(f"git ref {source.ref!r} not found in {shown}")
    async with _config_folder() as config_dir:
        clone = _Clone(jail, source, url, config_dir)
        cloned = await clone.git("clone", "--no-checkout", "--", url, REPO)
        if cloned.returncode != 0:
            raise BuildFailed(f"git clone of {shown} failed: {_last_line(cloned)}")
        candidates = [f"refs/remotes/origin/{source.ref}", f"refs/tags/{source.ref}"]
        if not source.ref:
            # No ref: the repository's default branch.
            candidates = ["refs/remotes/origin/HEAD"]
        elif _COMMIT.fullmatch(source.ref):
            candidates.append(source.ref)
        commit = ""
        for candidate in candidates:
            commit = await clone.commit(candidate)
            if commit:
                break
        else:
            raise BuildFailed(f"git ref {source.ref!r} not found in {shown}")
        done = await clone.git("checkout", "--quiet", "--detach", commit)
        if done.returncode != 0:
            raise BuildFailed(f"git checkout of {commit} failed: {_last_line(done)}")
    jail.log(f"checked out {shown} at {source.ref or 'its default branch'} ({commit})")
    return commit


class _Clone:
    """git commands on one checkout, each a step of the jail."""

    def __init__(self, jail: BuildJail, source: GitContext, url: str, config_dir: Path) -> None:
        self._jail = jail
        self._env = jail.env(**_env(source, url))
        self._config = config_dir

    async def git(self, *argv: str, quiet: bool = False) -> StepResult:
        """Run git; its output goes to the build log unless ``quiet``, with
        anything unprintable a server may have sent replaced."""
        return await self._jail.run(
            "git",
            [GIT, *argv],
            env=self._env,
            cwd=REPO if argv[0] != "clone" else WORK,
            ro_binds=[(self._config, CONFIG_DIR)],
            check=False,
            log=_discard if quiet else _printable(self._jail.log),
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


def _env(source: GitContext, url: str) -> dict[str, str]:
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": f"{CONFIG_DIR}/gitconfig",
        # The git protocol knows no HTTP proxy: a CONNECT through it.
        "GIT_PROXY_COMMAND": f"{CONFIG_DIR}/connect",
    }
    parts = urlsplit(url)
    settings: list[tuple[str, str]] = []
    if source.credentials is not None:
        token = f"{source.credentials.username}:{source.credentials.password}"
        header = "Authorization: Basic " + base64.b64encode(token.encode()).decode()
        settings.append((f"http.{parts.scheme}://{parts.netloc}/.extraHeader", header))
    env["GIT_CONFIG_COUNT"] = str(len(settings))
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


#: The checkout's git configuration (as the "global" file).
GLOBAL_CONFIG = """\
[core]
\thooksPath = /dev/null
[protocol "ext"]
\tallow = never
[protocol "file"]
\tallow = never
[http]
\t# Where the clone goes was checked (by the egress proxy, at the
\t# addresses it connects to); a redirect would go elsewhere.
\tfollowRedirects = false
"""
#: git's proxy command for the git protocol: ``connect HOST PORT`` opens a
#: CONNECT tunnel through the egress proxy (socat speaks it). git closes its
#: side once it has asked for the pack; ``-t`` keeps socat reading the pack
#: until the server is done (socat's default is to quit half a second later).
#: ``shut-close`` closes git's end the moment the server's ends first (a
#: server that hangs up unanswered): without it socat would keep git
#: waiting for those 3600 s.
CONNECT = f"""#!/bin/sh
exec /usr/bin/socat -t 3600 -,shut-close "PROXY:{PROXY_HOST}:$1:$2,proxyport={PROXY_PORT}"
"""


@contextlib.asynccontextmanager
async def _config_folder() -> AsyncIterator[Path]:
    """A folder of the server's with the configuration git runs with."""
    with tempfile.TemporaryDirectory(prefix="ignite-git-") as name:
        folder = Path(name)
        await asyncio.to_thread(_write_config, folder)
        yield folder


def _write_config(folder: Path) -> None:
    (folder / "gitconfig").write_text(GLOBAL_CONFIG)
    (folder / "connect").write_text(CONNECT)
    (folder / "connect").chmod(0o755)
    # Readable by the build uid git runs as.
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
    (("http code 403 from proxy",),
     "fatal: the platform's egress proxy refused the destination (the build log says why)"),
    (("from proxy after connect",), "fatal: the connection was refused"),
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
