"""The only way out of a build's network namespace: an HTTP proxy the server
runs, which lets a build reach the package registries it needs and nothing
else.

Each build gets a network namespace of its own holding only loopback
(containment/netns.py). The server listens inside it, on
``127.0.0.1:PROXY_PORT``, with a socket it made there, and the build's tools
are pointed at that address (``HTTP_PROXY``/``HTTPS_PROXY``, pip's
``--proxy``); pip, cargo, go, deno, git, buildah and the package managers of
Dockerfile ``RUN`` steps all honour it. Nothing else is reachable from the
namespace: not the server's gRPC port, the gateway, the metrics listeners,
the embedded registry or PostgreSQL, not another Ignite on the same host,
not the cloud metadata address.

Each connection the proxy accepts names its destination (``CONNECT
host:port`` for TLS, an absolute ``http://`` URL otherwise). It is allowed
when the destination matches the policy's allow-list and no address the
name resolves to is internal (ignite_common/addresses.py, the same check
the server's own image and git fetches use: loopback, link-local, private
ranges, this machine's own addresses): a registry name that resolves to one
is refused, so a DNS answer cannot turn the proxy into a way onto the
host's own network.

The allow-list is the operator's ``--egress-allow`` (one list for builds
and the server's own fetches, images/egress.py). ``default`` stands for
the package registries (DEFAULT_ALLOWED, ports 80 and 443, public
addresses only). Every other entry is the operator saying so, reached as
written whatever it resolves to: ``host``, ``host:port``, ``*.suffix``, an
address, ``address:port`` or a network (``10.0.0.0/8``); without a port,
any port (the test suite's local package index and git daemon are such
entries). A repository a build clones is added for that build under the
public-address rule, unless an address or network the operator listed
covers where it leads. The proxy connects to the address it checked, never
to a second lookup. A refusal answers ``403`` with the reason, and the
build log says what was refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog

from ignite_common.addresses import internal_reason
from ignite_common.streams import close_quietly, pipe
from ignite_server.containment.netns import NetNamespace

log = structlog.get_logger(__name__)

#: Where builds find the proxy, inside their own namespace.
PROXY_HOST = "127.0.0.1"
PROXY_PORT = 3128
PROXY_URL = f"http://{PROXY_HOST}:{PROXY_PORT}"
#: The package registries the managed runtimes' builds and common
#: Dockerfile steps fetch from (docs/builds.md): pip, cargo, go, deno and
#: npm, and Debian's and Alpine's package mirrors for ``RUN``.
DEFAULT_ALLOWED = (
    "pypi.org",
    "files.pythonhosted.org",
    "index.crates.io",
    "static.crates.io",
    "crates.io",
    "proxy.golang.org",
    "sum.golang.org",
    "registry.npmjs.org",
    "jsr.io",
    "deno.land",
    "deb.debian.org",
    "security.debian.org",
    "dl-cdn.alpinelinux.org",
)
#: Ports an entry without one allows.
DEFAULT_PORTS = (80, 443)
#: Longest request head the proxy reads.
MAX_HEAD_BYTES = 16 * 1024
#: Connections one build may have open through the proxy at once.
MAX_CONNECTIONS = 64
#: How long a destination may take to accept a connection.
CONNECT_TIMEOUT_SECS = 20.0
#: Headers a proxy consumes rather than passes on.
_HOP_HEADERS = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


class EgressRefused(Exception):
    """A destination the policy does not allow; the message says why."""


@dataclass(frozen=True)
class _Rule:
    host: str
    #: The ports allowed; empty: any.
    ports: tuple[int, ...]
    #: The operator's own entry: reached as written, whatever it resolves to.
    literal: bool
    #: A network entry (``10.0.0.0/8``): the addresses in it.
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    def matches(self, host: str, port: int) -> bool:
        if self.ports and port not in self.ports:
            return False
        if self.network is not None:
            return _is_address(host) and self.covers(host, port)
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    def covers(self, address: str, port: int) -> bool:
        """Whether this operator's entry allows the IP ``address``."""
        if not self.literal or (self.ports and port not in self.ports):
            return False
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if self.network is not None:
            return ip.version == self.network.version and ip in self.network
        return _is_address(self.host) and ip == ipaddress.ip_address(self.host)


def _rule(entry: str, *, operator: bool = False) -> _Rule:
    """A rule of ``entry``; an ``operator``'s entry without a port allows
    any port and is reached as written, a package registry's allows 80 and
    443 and must resolve to public addresses."""
    entry = entry.strip().lower()
    if operator and "/" in entry:
        return _Rule(entry, (), literal=True, network=ipaddress.ip_network(entry, strict=False))
    host, port = entry, ""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    if host == "localhost":
        host = "127.0.0.1"
    ports = (int(port),) if port else (() if operator else DEFAULT_PORTS)
    return _Rule(host, ports, literal=operator or _is_address(host))


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class EgressPolicy:
    """Which destinations builds may reach (see the module docstring)."""

    rules: tuple[_Rule, ...]

    @classmethod
    def allowing(cls, entries: Iterable[str]) -> EgressPolicy:
        """A policy from allow-list entries; ``default`` stands for
        DEFAULT_ALLOWED."""
        rules: list[_Rule] = []
        for entry in entries:
            if entry.strip() == "default":
                rules += [_rule(host) for host in DEFAULT_ALLOWED]
            elif entry.strip():
                rules.append(_rule(entry, operator=True))
        return cls(tuple(rules))

    def with_urls(self, urls: Iterable[str], *, trusted: bool = False) -> EgressPolicy:
        """This policy plus the host and port of each URL. A ``trusted`` URL
        is the operator's (a configured package index): an address in it is
        reached as written. Any other (a repository a build clones) must
        resolve to public addresses like every name."""
        extra = []
        for url in urls:
            parts = urlsplit(url)
            if parts.hostname:
                port = parts.port or {"https": 443, "http": 80, "git": 9418}.get(parts.scheme, 443)
                rule = _rule(f"[{parts.hostname}]:{port}")
                extra.append(rule if trusted else _Rule(rule.host, rule.ports, literal=False))
        return EgressPolicy((*self.rules, *extra))

    async def resolve(self, host: str, port: int) -> list[tuple[str, int]]:
        """The addresses to connect to for ``host:port``; EgressRefused when
        the policy does not allow it."""
        host = host.lower().rstrip(".").strip("[]")
        if host == "localhost":
            host = "127.0.0.1"
        rule = next((r for r in self.rules if r.matches(host, port)), None)
        if rule is None:
            raise EgressRefused(f"{host}:{port} is not an allowed package registry")
        if rule.literal:
            return [(host, port)]
        if _is_address(host):
            # An address nobody allowed as written: never an internal one.
            why = internal_reason(host)
            if why and not self._operator_allows(host, port):
                raise EgressRefused(f"{host} is {why}")
            return [(host, port)]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise EgressRefused(f"{host} does not resolve") from None
        addresses = [(str(info[4][0]), port) for info in infos]
        for address, _ in addresses:
            why = internal_reason(address)
            if why and not self._operator_allows(address, port):
                raise EgressRefused(f"{host} resolves to {why}")
        return addresses

    def _operator_allows(self, address: str, port: int) -> bool:
        """Whether an address or network the operator listed covers the
        internal ``address``."""
        return any(rule.covers(address, port) for rule in self.rules)


class EgressProxy:
    """The proxy of one build: listens in its namespace, logs refusals to
    the build log ``notice``."""

    def __init__(self, policy: EgressPolicy, notice: Callable[[str], None]) -> None:
        self._policy = policy
        self._notice = notice
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, netns: NetNamespace) -> None:
        """Listen on PROXY_HOST:PROXY_PORT inside ``netns``."""
        sock = await netns.listener(PROXY_HOST, PROXY_PORT)
        self._server = await asyncio.start_server(self._accepted, sock=sock, limit=MAX_HEAD_BYTES)

    async def close(self) -> None:
        """Stop listening and cut every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= MAX_CONNECTIONS:
            await _answer(writer, 429, "too many connections through the build's proxy")
            return
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._connections.discard(task)
            await close_quietly(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        if method == "CONNECT":
            host, _, port_text = target.rpartition(":")
            port, first = int(port_text), b""
        else:
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname:
                await _answer(writer, 400, "only CONNECT and absolute http:// requests")
                return
            host, port = parts.hostname, parts.port or 80
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            kept = [
                line
                for line in lines[1:]
                if line and line.split(":", 1)[0].strip().lower() not in _HOP_HEADERS
            ]
            request = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close"])
            first = (request + "\r\n\r\n").encode("latin-1")
        try:
            addresses = await self._policy.resolve(host, port)
            upstream_r, upstream_w = await _connect(addresses)
        except EgressRefused as refused:
            self._notice(f"egress refused: {refused}")
            log.info("build.egress_refused", destination=f"{host}:{port}", reason=str(refused))
            await _answer(writer, 403, str(refused))
            return
        except OSError:
            await _answer(writer, 502, f"{host}:{port} did not accept the connection")
            return
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                upstream_w.write(first)
            await asyncio.gather(pipe(reader, upstream_w), pipe(upstream_r, writer))
        finally:
            await close_quietly(upstream_w)


async def _connect(
    addresses: Sequence[tuple[str, int]],
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the first of ``addresses`` that accepts one."""
    last: OSError = OSError("no address")
    for host, port in addresses:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECS):
                return await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            last = exc if isinstance(exc, OSError) else OSError(str(exc))
    raise last


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = (reason + "\n").encode()
    writer.write(
        f"HTTP/1.1 {status} {'Forbidden' if status == 403 else 'Refused'}\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(OSError):
        await writer.drain()
