"""What GetApp shows of an app: its stored settings, plus what really runs
(deployment state, ready pods, the status message) and its public URLs."""

from __future__ import annotations

from dataclasses import dataclass

from ignite_server.domain.models import App, AppView, DeploymentState
from ignite_server.ports.app_runner import AppRunner

#: What an app whose host label another app also has reads as its status.
HOST_DISPUTED_NOTICE = (
    "its URL serves no app: another app created before host names were unique has the same"
    " host name, and a platform administrator must delete or re-create one of them"
)


@dataclass(frozen=True)
class PublicUrls:
    """How direct app URLs are spelled: ``<scheme>://<app>-<org>.<domain>[:port]``."""

    domain: str = "ignite.localhost"
    scheme: str = "http"
    port: int = 8080

    def for_app(self, organization: str, name: str) -> list[str]:
        default_port = {"http": 80, "https": 443}.get(self.scheme)
        suffix = "" if self.port == default_port else f":{self.port}"
        return [f"{self.scheme}://{name}-{organization}.{self.domain}{suffix}"]


class AppViews:
    """Turns stored apps into the picture callers get."""

    def __init__(self, runner: AppRunner | None, urls: PublicUrls, compiling: set[str]) -> None:
        self._runner = runner
        self._urls = urls
        self._compiling = compiling

    def url_of(self, organization: str, name: str) -> str:
        """The app's direct URL."""
        return self._urls.for_app(organization, name)[0]

    def view(self, app: App) -> AppView:
        """GetApp's picture: stored settings plus what really runs. An app
        whose host label is disputed has no URL (its URL serves no app)."""
        state = DeploymentState.CREATED if app.active_version == 0 else DeploymentState.COLD
        ready, message = 0, ""
        if self._runner is not None and app.active_version:
            status = self._runner.status(app.id)
            if status.state is not None:
                state = status.state
            ready, message = status.ready_replicas, status.message
        if app.id in self._compiling:
            state = DeploymentState.COMPILING
        urls = self._urls.for_app(app.organization, app.name) if app.active_version else []
        if app.host_disputed:
            urls = []
            message = (
                f"{HOST_DISPUTED_NOTICE} (host label {app.host_label!r}); "
                "invoke it through the API" + (f"; {message}" if message else "")
            )
        return AppView(app, state, ready, message, urls)
