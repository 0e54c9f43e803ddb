"""How a gate answers a request it turns away: the same OpenAI envelope as the routes."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.envelope import error_response


async def reject(
    error: ProxyError,
    scope: Scope,
    receive: Receive,
    send: Send,
    headers: dict[str, str] | None = None,
) -> None:
    response = error_response(error)
    if headers:
        response.headers.update(headers)
    await response(scope, receive, send)


def header_list(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]
