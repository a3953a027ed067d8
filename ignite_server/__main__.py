"""`ignite-server` / `python -m ignite_server`: run the gRPC server."""

from __future__ import annotations

import asyncio
import sys

from ignite_common.log_setup import configure
from ignite_server import config as config_module
from ignite_server.backends.local.backend import SandboxRequired
from ignite_server.server import serve


def main(argv: list[str] | None = None) -> None:
    config = config_module.parse(argv if argv is not None else sys.argv[1:])
    configure(config.log_format)
    try:
        asyncio.run(serve(config))
    except SandboxRequired as exc:
        print(f"ignite-server: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
