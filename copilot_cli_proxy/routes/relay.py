"""POST /v1/chat/completions answered by an OpenAI-compatible upstream, as it answers.

The upstream already speaks the client's format: its chunks go out one by one as they
arrive (no buffering), only ``model`` rewritten to the name the client asked for; a
whole answer goes out the same way. Slots, REQUEST_TIMEOUT, disconnects and errors
(a real status before the first byte, a final SSE error event after it) are the chat
route's own (``ChatResponder``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
from starlette.requests import Request
from starlette.types import Send

from copilot_cli_proxy.backends.openai_events import usage_of
from copilot_cli_proxy.core.backend import RelayBackend
from copilot_cli_proxy.core.request import ChatRequest
from copilot_cli_proxy.core.types import UpstreamBody, UpstreamChunk
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.gateway.gateway import Routed
from copilot_cli_proxy.protocol.responses import SSE_DONE, sse_event
from copilot_cli_proxy.routes.chat import SSE_HEADERS, ChatResponder
from copilot_cli_proxy.routes.common import json_bytes


class RelayResponder(ChatResponder):
    def __init__(
        self, request: Request, chat: ChatRequest, routed: Routed, body: dict[str, Any]
    ) -> None:
        super().__init__(request, chat, routed)
        self.body = body
        upstream = routed.node.backend
        assert isinstance(upstream, RelayBackend)  # chosen for it (routes/chat.py)
        self.upstream = upstream

    async def _run(self, send: Send) -> None:
        with anyio.move_on_after(self.timeout_s) as deadline:
            async with self.limiter.slot():
                self._slot_taken_at = time.monotonic()
                self.outcome.record.attempts += 1
                answer = self.upstream.relay(
                    self.body,
                    model=self.chat.model,
                    stream=self.chat.stream,
                    include_usage=self.chat.include_usage,
                )
                async with aclosing(answer) as items:
                    await self._relay(items, send)
        if deadline.cancelled_caught and not self._complete_sent:
            raise self._request_timeout()

    async def _relay(self, items: AsyncIterator[UpstreamChunk | UpstreamBody], send: Send) -> None:
        model = self.identity.model
        async for item in items:
            data = item.data
            if "model" in data:
                data["model"] = model
            usage = usage_of(data)
            if usage is not None:
                self.outcome.usage = usage
            if isinstance(item, UpstreamBody):
                await self._start(send, [(b"content-type", b"application/json")])
                await send(
                    {"type": "http.response.body", "body": json_bytes(data), "more_body": False}
                )
                return
            if not self._headers_sent:
                await self._start(send, SSE_HEADERS)
            await send({"type": "http.response.body", "body": sse_event(data), "more_body": True})
        if not self.chat.stream:
            raise ProxyError("upstream_error", "The upstream ended without an answer.")
        if not self._headers_sent:  # an upstream that streamed no chunk at all
            await self._start(send, SSE_HEADERS)
        await send({"type": "http.response.body", "body": SSE_DONE, "more_body": False})
