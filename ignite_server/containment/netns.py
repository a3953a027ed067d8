"""Network namespaces the server makes for image pods and builds, and sockets it
creates inside them.

An image pod's app listens on TCP in a network namespace of its own that
holds only loopback. Rather than run a relay process in there, the server
(root) makes the namespace itself before the container starts, hands it to
the OCI runtime by path, and keeps a file descriptor that holds it open. A
socket belongs to the namespace of the thread that creates it, whatever
thread uses it later; so to reach the app, a thread enters the namespace
(``setns``), creates the socket, and returns to the server's namespace, and
the event loop then connects (or listens) with it as with any other socket.

That switching happens on one dedicated thread, never on the event loop's
or a shared executor's: a thread that could not return to the server's
namespace (it cannot happen short of the kernel refusing a root ``setns``)
refuses all further work, and a fresh thread takes over, so no other
server code ever runs inside a pod's namespace.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import fcntl
import functools
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import TypeVar

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
#: The struct ifreq the interface-flag ioctls take: the name, then the flags.
IFREQ = "16sH22x"

T = TypeVar("T")


class NamespaceError(OSError):
    """A namespace could not be made or entered."""


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise NamespaceError(err, f"{what}: {os.strerror(err)}")


class _Switcher:
    """The one thread that enters pods' namespaces."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._local = threading.local()

    def _home(self) -> int:
        """This thread's namespace when it started: the server's."""
        home: int | None = getattr(self._local, "home", None)
        if home is None:
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            self._local.home = home
        return home

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the switching thread; ``fn`` may enter a namespace
        through ``enter`` and is brought back to the server's afterwards."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, "ignite-netns")
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, self._guarded, fn)
        except _Stranded:
            # That thread is stuck in a pod's namespace: retire it.
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False)
            raise NamespaceError(0, "could not return to the server's network namespace") from None

    def _guarded(self, fn: Callable[[], T]) -> T:
        if getattr(self._local, "stranded", False):
            raise _Stranded
        home = self._home()
        try:
            return fn()
        finally:
            if _libc().setns(home, CLONE_NEWNET) != 0:
                self._local.stranded = True
                raise _Stranded


class _Stranded(Exception):
    """The switching thread could not return home."""


_switcher = _Switcher()


def _enter(ns_fd: int) -> None:
    _check(_libc().setns(ns_fd, CLONE_NEWNET), "setns")


class NetNamespace:
    """A network namespace of our own, holding only loopback (up), kept
    alive by a file descriptor until ``close``."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    async def create(cls) -> NetNamespace:
        """A new namespace with its loopback interface up."""

        def make() -> int:
            _check(_libc().unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    request = struct.pack(IFREQ, b"lo", 0)
                    (flags,) = struct.unpack_from(
                        "H", fcntl.ioctl(probe, SIOCGIFFLAGS, request), 16
                    )
                    fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", flags | IFF_UP))
            except OSError:
                os.close(fd)
                raise
            return fd

        return cls(await _switcher.run(make))

    @property
    def path(self) -> str:
        """A path naming the namespace while it is open (for the OCI
        runtime, which joins it by path)."""
        return f"/proc/{os.getpid()}/fd/{self.fd}"

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the switching thread inside the namespace (for what
        the kernel ties to the caller's namespace, such as
        ``/proc/sys/net``)."""

        def inside() -> T:
            _enter(self.fd)
            return fn()

        return await _switcher.run(inside)

    async def open_socket(self, family: int = socket.AF_INET) -> socket.socket:
        """A non-blocking TCP socket created inside the namespace."""

        def make() -> socket.socket:
            _enter(self.fd)
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            return sock

        return await _switcher.run(make)

    async def connect(self, host: str, port: int) -> socket.socket:
        """A socket connected to ``host:port`` as seen inside the namespace."""
        sock = await self.open_socket()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    async def listener(self, host: str, port: int) -> socket.socket:
        """A socket listening on ``host:port`` inside the namespace."""
        sock = await self.open_socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(socket.SOMAXCONN)
        except BaseException:
            sock.close()
            raise
        return sock

    def close(self) -> None:
        """Let the namespace go (it ends once nothing else holds it)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
