"""Every conversation with a registry, through ``skopeo``: resolving a
reference to a digest, copying an image by digest, reading its config.

Decisions kept here, in one place:

- **By digest.** A tag is read once, to learn the digest it points to; the
  copy then names that digest on both sides with ``--preserve-digests``, so
  the platform's copy has the very manifest the user's registry served. A
  multi-platform index is resolved to the manifest for this host's
  architecture (the one a pod will run), which is what is copied.
- **TLS per registry host.** Loopback registries (the embedded one, test
  registries) speak plain HTTP; any other host is verified unless the
  operator lists it as insecure.
- **Credentials never on a command line.** They go into an auth file in a
  private temporary folder (mode 0700) named with ``--authfile``, removed
  afterwards. Every call names an auth file, an empty one when there are no
  credentials, and runs with a private ``$HOME``, so skopeo never falls back
  to credentials of the server's own account (``~/.docker/config.json``).
- **Bounded.** Every call has a deadline (``--command-timeout``, and a kill
  shortly after in case skopeo ignores it): a registry that does not answer
  fails with REGISTRY_UNREACHABLE instead of hanging an import.
- **One error vocabulary.** skopeo's messages are mapped to the
  ImageUnavailable reasons once, in ``_unavailable``, and told by kind: an
  error never repeats what the other side sent (a malformed answer's
  bytes, a certificate's names).

Signatures are not checked (``--insecure-policy``): images are trusted by
the digest their owner published, the same trust a pull by digest gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import platform
import re
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ignite_common.addresses import is_loopback
from ignite_server.images.reference import ImageReference
from ignite_server.ports.image_builder import ImageConfig, ImageUnavailable, RegistryCredentials
from ignite_server.ports.registry_auth import private_auth_file

SKOPEO = "/usr/bin/skopeo"
#: Looking a reference up: a registry that has not answered by then is
#: taken as unreachable.
LOOKUP_TIMEOUT_SECS = 20
#: Copying an image: large images take a while on a slow link.
COPY_TIMEOUT_SECS = 900
#: The image's name inside the OCI layout folders this module writes.
LAYOUT_NAME = "image"
#: Extra time skopeo gets to honour its own timeout before it is killed.
KILL_GRACE_SECS = 5
#: Manifest media types that list one manifest per platform.
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
#: OCI architecture names of the machines the server runs on.
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}
#: Substrings of skopeo's errors, first match wins: how each failure is told.
_REASONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("REGISTRY_AUTH_FAILED", ("unauthorized", "authentication required", "denied", " 401", " 403")),
    ("IMAGE_NOT_FOUND", ("manifest unknown", "name unknown", "not found", " 404")),
)
_FATAL = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


class Skopeo:
    """Registry operations; TLS is verified except on loopback and the
    ``insecure_registries`` hosts."""

    def __init__(self, insecure_registries: Sequence[str] = ()) -> None:
        self._insecure = frozenset(insecure_registries)

    def tls_verify(self, host: str) -> bool:
        """Whether connections to ``host`` verify TLS."""
        return not (is_loopback(host) or host in self._insecure)

    async def resolve(
        self, reference: ImageReference, credentials: RegistryCredentials | None
    ) -> str:
        """The digest of the manifest ``reference`` names for this host's
        architecture."""
        with private_auth_file(reference.host, credentials) as (auth, home):
            raw = await self._run(
                [
                    "inspect", "--raw",
                    f"--tls-verify={_flag(self.tls_verify(reference.host))}",
                    "--authfile", auth,
                    f"docker://{reference.pinned}",
                ],
                home=home,
                limit_secs=LOOKUP_TIMEOUT_SECS,
                what=str(reference),
            )  # fmt: skip
        return _platform_digest(raw, str(reference))

    async def copy(
        self,
        source: str,
        destination: ImageReference,
        digest: str,
        *,
        source_credentials: RegistryCredentials | None = None,
        destination_credentials: RegistryCredentials | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """Copy the manifest ``digest`` of ``source`` (a skopeo transport
        reference: ``docker://host/path@digest`` or ``oci:/dir``) to
        ``destination`` at the same digest."""
        argv = ["copy", "--preserve-digests", "--retry-times", "2"]
        source_host = source.removeprefix("docker://").split("/", 1)[0]
        with contextlib.ExitStack() as stack:
            if source.startswith("docker://"):
                auth, _ = stack.enter_context(private_auth_file(source_host, source_credentials))
                argv += [
                    f"--src-tls-verify={_flag(self.tls_verify(source_host))}",
                    "--src-authfile", auth,
                ]  # fmt: skip
            auth, home = stack.enter_context(
                private_auth_file(destination.host, destination_credentials)
            )
            argv += [
                f"--dest-tls-verify={_flag(self.tls_verify(destination.host))}",
                "--dest-authfile", auth,
                source, f"docker://{destination.at(digest)}",
            ]  # fmt: skip
            await self._run(
                argv, home=home, limit_secs=COPY_TIMEOUT_SECS, what=str(destination), log=log
            )

    async def fetch(
        self,
        source: ImageReference,
        digest: str,
        layout: Path,
        credentials: RegistryCredentials | None,
    ) -> None:
        """Copy the manifest ``digest`` of ``source``'s repository into the
        OCI layout folder ``layout`` (as its image ``LAYOUT_NAME``)."""
        with private_auth_file(source.host, credentials) as (auth, home):
            await self._run(
                [
                    "copy", "--preserve-digests", "--retry-times", "2",
                    f"--src-tls-verify={_flag(self.tls_verify(source.host))}",
                    "--src-authfile", auth,
                    f"docker://{source.at(digest)}", f"oci:{layout}:{LAYOUT_NAME}",
                ],
                home=home,
                limit_secs=COPY_TIMEOUT_SECS,
                what=str(source),
            )  # fmt: skip

    async def config(
        self, reference: ImageReference, digest: str, credentials: RegistryCredentials | None
    ) -> ImageConfig:
        """What the config of image ``digest`` in ``reference``'s repository
        says about running it."""
        with private_auth_file(reference.host, credentials) as (auth, home):
            raw = await self._run(
                [
                    "inspect", "--config",
                    f"--tls-verify={_flag(self.tls_verify(reference.host))}",
                    "--authfile", auth,
                    f"docker://{reference.at(digest)}",
                ],
                home=home,
                limit_secs=LOOKUP_TIMEOUT_SECS,
                what=reference.at(digest),
            )  # fmt: skip
        return image_config(json.loads(raw))

    async def _run(
        self,
        argv: list[str],
        *,
        home: str,
        limit_secs: int,
        what: str,
        log: Callable[[str], None] | None = None,
    ) -> bytes:
        """skopeo's stdout; ImageUnavailable when it fails or times out."""
        process = await asyncio.create_subprocess_exec(
            SKOPEO,
            "--insecure-policy",
            "--command-timeout",
            f"{limit_secs}s",
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin", "HOME": home, **_proxy_env()},
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(_collect(process, log), limit_secs + KILL_GRACE_SECS)
        except TimeoutError:
            _kill(process)
            await process.wait()
            raise ImageUnavailable(
                f"{what}: no answer within {limit_secs} s", "REGISTRY_UNREACHABLE"
            ) from None
        except BaseException:  # cancelled: the caller's deadline passed
            _kill(process)
            await process.wait()
            raise
        if process.returncode != 0:
            raise _unavailable(err.decode("utf-8", "replace"), what)
        return out


async def _collect(
    process: asyncio.subprocess.Process, log: Callable[[str], None] | None
) -> tuple[bytes, bytes]:
    """stdout and stderr; stdout goes line by line to ``log`` if given."""
    assert process.stdout is not None and process.stderr is not None
    if log is None:
        return await process.communicate()
    lines: list[bytes] = []
    stderr = asyncio.ensure_future(process.stderr.read())
    while raw := await process.stdout.readline():
        lines.append(raw)
        log(raw.decode("utf-8", "replace").rstrip("\r\n"))
    await process.wait()
    return b"".join(lines), await stderr


def _unavailable(output: str, what: str) -> ImageUnavailable:
    """The ImageUnavailable a failed skopeo call means, told by kind: skopeo
    quotes what the other side sent (a malformed answer's first bytes, a
    certificate's names, a registry's own error text), and an error never
    repeats another service's bytes, so only the kind of failure is said."""
    matches = _FATAL.findall(output)
    lines = output.strip().splitlines()
    text = matches[-1] if matches else (lines[-1] if lines else "")
    lowered = text.lower()
    for reason, needles in _REASONS:
        if any(needle in lowered for needle in needles):
            return ImageUnavailable(f"{what}: {_TOLD[reason]}", reason)
    for needles, told in _UNREACHABLE:
        if any(needle in lowered for needle in needles):
            return ImageUnavailable(f"{what}: {told}", "REGISTRY_UNREACHABLE")
    return ImageUnavailable(
        f"{what}: the answer is not a registry's (an HTTP or protocol error)",
        "REGISTRY_UNREACHABLE",
    )


#: What each reason of _REASONS says.
_TOLD = {
    "REGISTRY_AUTH_FAILED": "the registry refused the credentials, or wants some",
    "IMAGE_NOT_FOUND": "no such repository, tag or digest",
    "IMAGE_REF_INVALID": "not an image reference",
}
#: Kinds of REGISTRY_UNREACHABLE, first match wins.
_UNREACHABLE: tuple[tuple[tuple[str, ...], str], ...] = (
    (("no such host", "server misbehaving", "lookup "),
     "the registry's host name does not resolve"),
    (("connection refused",), "the registry refused the connection"),
    (("timeout", "deadline exceeded", "i/o timeout"), "the registry did not answer in time"),
    (("http response to https client",), "the registry speaks plain HTTP, not HTTPS"),
    (("x509", "certificate", "tls"),
     "TLS failed (the certificate is not trusted, or the server does not speak TLS)"),
    (("connection reset", "eof", "broken pipe"), "the registry closed the connection"),
)  # fmt: skip


def _platform_digest(raw: bytes, what: str) -> str:
    """The digest of the single-platform manifest ``raw`` is or lists."""
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise ImageUnavailable(f"{what}: no manifest in the answer", "IMAGE_NOT_FOUND") from None
    if manifest.get("mediaType") not in INDEX_TYPES and "manifests" not in manifest:
        return "sha256:" + hashlib.sha256(raw).hexdigest()
    architecture = ARCHITECTURES.get(platform.machine(), platform.machine())
    for entry in manifest.get("manifests", []):
        target = entry.get("platform", {})
        if target.get("os") == "linux" and target.get("architecture") == architecture:
            return str(entry["digest"])
    raise ImageUnavailable(f"{what} has no linux/{architecture} image", "IMAGE_NOT_FOUND")


def image_config(document: Mapping[str, object]) -> ImageConfig:
    """ImageConfig from an OCI image config document."""
    config = document.get("config") or {}
    assert isinstance(config, dict)
    env: dict[str, str] = {}
    for entry in config.get("Env") or ():
        name, _, value = str(entry).partition("=")
        env[name] = value
    ports = []
    for key in config.get("ExposedPorts") or {}:
        number, _, protocol = str(key).partition("/")
        if protocol in ("", "tcp") and number.isdigit():
            ports.append(int(number))
    return ImageConfig(
        entrypoint=tuple(config.get("Entrypoint") or ()),
        cmd=tuple(config.get("Cmd") or ()),
        env=env,
        workdir=str(config.get("WorkingDir") or ""),
        user=str(config.get("User") or ""),
        exposed_ports=tuple(ports),
    )


def _proxy_env() -> dict[str, str]:
    """How this host reaches registries (skopeo runs the platform's own
    fetches on the host, no user code)."""
    names = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")
    return {
        name: os.environ[name]
        for name in (*names, *(name.lower() for name in names[:3]))
        if name in os.environ
    }


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def oci_manifest_digest(layout: Path) -> str:
    """The digest of the one image in an OCI layout folder."""
    index = json.loads((layout / "index.json").read_text())
    return str(index["manifests"][0]["digest"])
