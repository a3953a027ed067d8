"""Opaque page tokens: the last key of a page, URL-safe base64 encoded."""

from __future__ import annotations

import base64
import binascii

from ignite_server.domain.errors import InvalidArgument


def encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def decode_token(token: str) -> str:
    """The key in ``token`` ("" for the first page)."""
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument(
            "page_token is not one this server issued",
            reason="INVALID_PAGE_TOKEN",
            metadata={"field": "page_token"},
        ) from None
