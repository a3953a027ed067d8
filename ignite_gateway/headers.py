"""Headers that describe one hop of a request, not the request itself.

A proxy must not pass these on (RFC 9110 §7.6.1, and the proxy
authentication fields of §11.7): they speak of the connection between two
parties, so each hop sets its own. The gateway is such a hop both ways: a
request relayed to an app (:mod:`ignite_gateway.app_urls`) and an app's
response relayed to the caller (:mod:`ignite_gateway.streaming`) lose them.
Each direction adds the framing and credential headers it decides itself.
"""

from __future__ import annotations

#: Lower-case names of the hop-by-hop headers.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
