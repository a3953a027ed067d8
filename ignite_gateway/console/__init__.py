"""The web console at ``/console``: static files built from console/ (see
console/README.md) and the one read API they need beyond the public one,
``/console/api/series`` (:mod:`ignite_gateway.console.series`)."""

from ignite_gateway.console.routes import CONSOLE_PATH, ConsoleRoutes

__all__ = ["CONSOLE_PATH", "ConsoleRoutes"]
