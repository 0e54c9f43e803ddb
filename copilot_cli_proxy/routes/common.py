"""What every route shares: the app's services (and, re-exported, the JSON error response)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import anyio
from starlette.requests import Request

from copilot_cli_proxy.core.backend import Backend
from copilot_cli_proxy.gateway.gateway import Gateway
from copilot_cli_proxy.protocol.envelope import JSONBody, error_response, json_bytes
from copilot_cli_proxy.runtime.limiter import ProcessLimiter
from copilot_cli_proxy.settings import Settings


class InFlight:
    """The answers being written now, so that a stopping server can end them itself.

    uvicorn's own way, cancelling each request's task when its graceful wait is over,
    reaches an answer as a bare cancellation: uvicorn then logs it as an application
    error and answers a plain-text 500. Cancelling the answer's own scope instead lets
    it send a ``503 cancelled`` (or a final SSE error event) and clean up first.
    """

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self.stopping = False

    @contextmanager
    def track(self, scope: anyio.CancelScope) -> Iterator[None]:
        self._scopes.add(scope)
        if self.stopping:
            scope.cancel()
        try:
            yield
        finally:
            self._scopes.discard(scope)

    def stop_all(self) -> int:
        """Cancel every answer in flight (and any that starts later); return how many."""
        self.stopping = True
        for scope in self._scopes:
            scope.cancel()
        return len(self._scopes)


@dataclass(slots=True)
class Services:
    settings: Settings
    gateway: Gateway
    started_at: float
    in_flight: InFlight = field(default_factory=InFlight)

    @property
    def backend(self) -> Backend:
        """The first backend: the only one of a server without a backends file."""
        return self.gateway.primary.backend

    @property
    def limiter(self) -> ProcessLimiter:
        return self.gateway.primary.limiter


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


__all__ = ["InFlight", "JSONBody", "Services", "error_response", "json_bytes", "services"]
