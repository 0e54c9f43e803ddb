"""What every route shares: the app's services and the JSON error response."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from copilot_cli_proxy.backends.cli_backend import CliBackend
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.runtime.limiter import ProcessLimiter
from copilot_cli_proxy.settings import Settings


@dataclass(slots=True)
class Services:
    settings: Settings
    backend: CliBackend
    limiter: ProcessLimiter
    started_at: float


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def json_bytes(payload: Any) -> bytes:
    # backslashreplace: an unpaired surrogate becomes its JSON escape, not an exception.
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace")


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def error_response(error: ProxyError) -> Response:
    return JSONBody(error.body(), status_code=error.status, headers=error.headers())
