"""Size limits: the request body (read as it arrives, never buffered past the limit, and
within a time limit), the number of messages and the total prompt text."""

from __future__ import annotations

import time
from typing import Any

import anyio
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from copilot_cli_proxy.core.request import ChatRequest
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.gate.respond import reject


def _body_too_large(max_bytes: int) -> ProxyError:
    return ProxyError(
        "request_too_large",
        f"The request body is larger than this server accepts ({max_bytes} bytes, MAX_BODY_BYTES).",
    )


def _body_too_slow(timeout_s: float) -> ProxyError:
    return ProxyError(
        "request_timeout",
        f"The request body did not arrive within {timeout_s:g} s (BODY_TIMEOUT).",
    )


class BodySizeGate:
    """413 for a body over ``max_bytes``: at once when Content-Length says so, else as
    soon as the bytes read so far pass it (chunked uploads have no Content-Length).

    408 for a body still arriving ``timeout_s`` after the headers: a client sending a
    byte now and then would otherwise hold its connection, and the route, forever.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float = 60.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit():
            if int(declared) > self.max_bytes:
                await reject(_body_too_large(self.max_bytes), scope, receive, send)
                return
        received = 0
        body_done = False
        deadline = time.monotonic() + self.timeout_s

        async def counted_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()  # the route waiting for a disconnect: no limit
            with anyio.move_on_after(deadline - time.monotonic()) as waited:
                message = await receive()
            # Raised inside the route's body read, so the route's error handler answers
            # them like any other ProxyError.
            if waited.cancelled_caught:
                raise _body_too_slow(self.timeout_s)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _body_too_large(self.max_bytes)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        await self.app(scope, counted_receive, send)


def check_message_count(body: dict[str, Any], max_messages: int) -> None:
    """Before parsing: a body of many tiny messages should not cost a parse of each."""
    messages = body.get("messages")
    if isinstance(messages, list) and len(messages) > max_messages:
        raise ProxyError(
            "too_many_messages",
            f"'messages' has {len(messages)} messages; this server accepts at most "
            f"{max_messages} (MAX_MESSAGES).",
            param="messages",
        )


def check_prompt_size(chat: ChatRequest, max_bytes: int) -> None:
    total = sum(len(m.content.encode("utf-8", "surrogatepass")) for m in chat.messages)
    if total > max_bytes:
        raise ProxyError(
            "prompt_too_large",
            f"The messages hold {total} bytes of text; this server accepts at most "
            f"{max_bytes} (MAX_PROMPT_BYTES).",
            param="messages",
        )
