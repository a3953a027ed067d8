"""``ignite-gateway``: run the HTTP edge (flags: ``ignite-gateway --help``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ignite_common.log_setup import configure as configure_logging
from ignite_gateway.config import parse_args
from ignite_gateway.server import serve


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags, then serve until SIGTERM or SIGINT."""
    config = parse_args(argv)
    configure_logging(config.log_format)
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
