"""Telling whether an address names this machine's loopback: for listen
addresses that may go without TLS and registries reached over plain HTTP."""

from __future__ import annotations

import ipaddress


def is_loopback(address: str) -> bool:
    """Whether ``host[:port]`` (an IPv6 host in brackets, or bare) is
    ``localhost`` or a loopback IP address."""
    host = address
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
