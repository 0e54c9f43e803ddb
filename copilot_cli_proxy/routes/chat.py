"""POST /v1/chat/completions.

The answer is driven by one ASGI callable in the request's own task: it takes a
slot, reads the backend's events, watches for the client going away, and enforces
REQUEST_TIMEOUT. Headers are sent only once the first piece of the answer exists,
so a failure before any text (CLI missing, not logged in, timeout) is a real HTTP
status, not a 200 stream holding an error. After that, an error is a final SSE
error event; a failed answer never ends with a fake ``finish_reason``.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from loguru import logger
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from copilot_cli_proxy.core.backend import CliRunRecord, RelayBackend, RunRecord
from copilot_cli_proxy.core.types import BackendEvent, Finish, TextDelta, ToolCallEvent, Usage
from copilot_cli_proxy.errors import ProxyError, clip
from copilot_cli_proxy.gate.sizes import check_message_count, check_prompt_size
from copilot_cli_proxy.gateway.capabilities import check_capabilities, ignored_params
from copilot_cli_proxy.gateway.gateway import Routed
from copilot_cli_proxy.protocol.requests import (
    ChatRequest,
    decode_body,
    ignored_params_header,
    parse_chat_request,
)
from copilot_cli_proxy.protocol.responses import (
    SSE_DONE,
    CompletionIdentity,
    StopSequenceFilter,
    sse_error,
    sse_event,
    tool_call_body,
)
from copilot_cli_proxy.routes.common import error_response, json_bytes, services
from copilot_cli_proxy.tools.tool_use import follow_tool_choice

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@dataclass(slots=True)
class Outcome:
    """How one answer went, for logs and metrics."""

    status: int = 200
    error_code: str | None = None
    first_byte_at: float | None = None
    usage: Usage | None = None
    record: RunRecord = field(default_factory=RunRecord)


class _ClientGone(Exception):
    """Writing to the client's socket failed: the client went away."""


class ChatResponder:
    def __init__(self, request: Request, chat: ChatRequest, routed: Routed) -> None:
        svc = services(request)
        self.backend = routed.node.backend
        self.limiter = routed.node.limiter
        self.in_flight = svc.in_flight
        self.timeout_s = svc.settings.request_timeout_s
        # The backend gets the model by its own name; the client sees the name it sent.
        self.chat = replace(chat, model=routed.model)
        self.identity = CompletionIdentity(model=routed.requested)
        # The record names the backend; one that runs a CLI also gets the CLI's details.
        runner = self.backend.runner
        self.outcome = Outcome(
            record=RunRecord(
                backend_id=routed.node.id,
                node=routed.node.id,
                cli=CliRunRecord(runner=runner) if runner is not None else None,
            )
        )
        self.started_at = time.monotonic()
        self._slot_taken_at: float | None = None
        self._extra_headers: list[tuple[bytes, bytes]] = []
        ignored = ignored_params(chat, self.backend.capabilities)
        if ignored:
            self._extra_headers.append((b"x-ignored-params", ignored_params_header(ignored)))
        self._headers_sent = False
        self._complete_sent = False
        self.disconnected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def client_send(message: Message) -> None:
            # Only an error here means "client gone": an OSError anywhere else is the
            # server's own (a full disk, no file descriptors left) and must be answered.
            try:
                await send(message)
            except OSError as exc:
                raise _ClientGone from exc
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self._complete_sent = True

        async with anyio.create_task_group() as tg:
            with self.in_flight.track(tg.cancel_scope):
                tg.start_soon(self._watch_disconnect, receive, tg.cancel_scope)
                try:
                    await self._answer(client_send)
                finally:
                    tg.cancel_scope.cancel()
        if self.in_flight.stopping and not self._complete_sent and not self.disconnected:
            stopped = ProxyError(
                "cancelled", "The server is shutting down; the request was stopped. Retry it."
            )
            await self._fail(stopped, client_send)
        if self.disconnected:
            self.outcome.status = 499
            self.outcome.error_code = self.outcome.error_code or "client_disconnected"
        logger.info(
            "chat {} backend={} model={} stream={} status={} code={} exit={} {:.0f}ms",
            self.identity.id,
            self.outcome.record.node,
            clip(self.chat.model),
            self.chat.stream,
            self.outcome.status,
            self.outcome.error_code,
            self.outcome.record.cli.exit_code if self.outcome.record.cli else None,
            (time.monotonic() - self.started_at) * 1000,
        )

    async def _watch_disconnect(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # After a complete response the server reports a disconnect too; the
                # CLI may still be draining then, and that is not the client leaving.
                if self._complete_sent:
                    return
                self.disconnected = True
                scope.cancel()
                return

    async def _answer(self, send: Send) -> None:
        try:
            await self._run(send)
        except ProxyError as error:
            await self._fail(error, send)
        except _ClientGone:
            self.disconnected = True
        except OSError as exc:
            logger.opt(exception=exc).error(
                "the server could not answer {}: {}", self.identity.id, exc
            )
            reason = exc.strerror or type(exc).__name__
            await self._fail(
                ProxyError(
                    "server_unavailable",
                    f"The server could not run the request: {reason}. "
                    "The operator can find the details in the server log.",
                ),
                send,
            )
        except Exception as exc:
            logger.exception("unexpected error while answering {}", self.identity.id)
            await self._fail(
                ProxyError("internal_error", f"Internal error: {type(exc).__name__}."), send
            )

    async def _run(self, send: Send) -> None:
        try:
            with anyio.move_on_after(self.timeout_s) as deadline:
                async with self.limiter.slot():
                    self._slot_taken_at = time.monotonic()
                    self.outcome.record.attempts += 1
                    events = follow_tool_choice(
                        self.backend.stream(self.chat, self.outcome.record), self.chat
                    )
                    async with aclosing(events) as stream:
                        if self.chat.stream:
                            await self._stream(stream, send)
                        else:
                            await self._complete(stream, send)
        except TimeoutError:
            # A limit of the backend's own, not REQUEST_TIMEOUT: do not cite that one.
            raise ProxyError(
                "timeout",
                "A step of the CLI run took longer than the server allows for it "
                "(not REQUEST_TIMEOUT); the CLI was stopped.",
            ) from None
        if deadline.cancelled_caught and not self._complete_sent:
            raise self._request_timeout()

    def _request_timeout(self) -> ProxyError:
        limit = f"REQUEST_TIMEOUT ({self.timeout_s:g} s)"
        if self._slot_taken_at is None:
            return ProxyError(
                "server_busy",
                f"The server is busy: no CLI slot ({self.limiter.max_concurrent}) freed up "
                f"within {limit}; the request was never started.",
                retry_after=max(1, math.ceil(min(self.timeout_s, 5.0))),
            )
        queued = self._slot_taken_at - self.started_at
        waited = f", {queued:.0f} s of it waiting for a CLI slot" if queued >= 1 else ""
        return ProxyError(
            "timeout", f"The CLI did not finish within {limit}{waited}; it was stopped."
        )

    async def _fail(self, error: ProxyError, send: Send) -> None:
        self.outcome.status = error.status
        self.outcome.error_code = error.code
        if self.disconnected:
            return
        try:
            if self._headers_sent:
                await send(
                    {"type": "http.response.body", "body": sse_error(error), "more_body": True}
                )
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                response = error_response(error)
                response.headers.update({k.decode(): v.decode() for k, v in self._extra_headers})
                await response({"type": "http"}, _no_receive, send)
        except _ClientGone:
            self.disconnected = True

    async def _start(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": headers + self._extra_headers}
        )
        self._headers_sent = True
        self.outcome.first_byte_at = time.monotonic()

    async def _stream(self, events: AsyncIterator[BackendEvent], send: Send) -> None:
        stops = StopSequenceFilter(self.chat.stop)
        reason: str | None = None
        calls = 0

        async def body(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        async for event in events:
            if isinstance(event, ToolCallEvent):
                if not self._headers_sent:
                    await self._start(send, SSE_HEADERS)
                    await body(sse_event(self.identity.chunk({"role": "assistant", "content": ""})))
                delta = {"tool_calls": [tool_call_body(event, calls)]}
                await body(sse_event(self.identity.chunk(delta)))
                calls += 1
            elif isinstance(event, TextDelta):
                text = stops.feed(event.text)
                if not self._headers_sent:
                    await self._start(send, SSE_HEADERS)
                    await body(sse_event(self.identity.chunk({"role": "assistant", "content": ""})))
                if text:
                    await body(sse_event(self.identity.chunk({"content": text})))
                if stops.stopped:
                    reason = "stop"
                    break
            elif isinstance(event, Usage):
                self.outcome.usage = event
            elif isinstance(event, Finish):
                reason = event.reason
                break
        if reason is None:
            raise ProxyError("cli_failed", "The CLI stopped before finishing its answer.")
        if not self._headers_sent:
            await self._start(send, SSE_HEADERS)
            await body(sse_event(self.identity.chunk({"role": "assistant", "content": ""})))
        tail = stops.flush()
        if tail:
            await body(sse_event(self.identity.chunk({"content": tail})))
        await body(sse_event(self.identity.chunk({}, finish_reason=reason)))
        if self.chat.include_usage:
            await body(sse_event(self.identity.usage_chunk(self.outcome.usage)))
        await body(SSE_DONE)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if not stops.stopped:
            await self._drain(events)

    async def _complete(self, events: AsyncIterator[BackendEvent], send: Send) -> None:
        stops = StopSequenceFilter(self.chat.stop)
        parts: list[str] = []
        calls: list[ToolCallEvent] = []
        reason: str | None = None
        async for event in events:
            if isinstance(event, ToolCallEvent):
                calls.append(event)
            elif isinstance(event, TextDelta):
                parts.append(stops.feed(event.text))
                if stops.stopped:
                    reason = "stop"
                    break
            elif isinstance(event, Usage):
                self.outcome.usage = event
            elif isinstance(event, Finish):
                reason = event.reason
                break
        if reason is None:
            raise ProxyError("cli_failed", "The CLI stopped before finishing its answer.")
        parts.append(stops.flush())
        payload = self.identity.completion("".join(parts), reason, self.outcome.usage, tuple(calls))
        await self._start(send, [(b"content-type", b"application/json")])
        await send({"type": "http.response.body", "body": json_bytes(payload), "more_body": False})
        if not stops.stopped:
            await self._drain(events)

    async def _drain(self, events: AsyncIterator[BackendEvent]) -> None:
        """After the answer went out, let the CLI end by itself so its exit code is known.

        Not after a stop sequence: closing the events then stops the CLI, whose
        remaining answer nobody wants.
        """
        try:
            async for _ in events:
                pass
        except ProxyError as error:
            logger.warning("CLI reported after its answer: {}", error.message)


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


async def chat_completions(request: Request) -> Any:
    svc = services(request)
    raw = await request.body()
    body = decode_body(raw)
    check_message_count(body, svc.settings.max_messages)
    chat = parse_chat_request(body, default_model=svc.gateway.default_model)
    request.state.chat = chat  # for the request log and metrics (observe/middleware.py)
    check_prompt_size(chat, svc.settings.max_prompt_bytes)
    routed = await svc.gateway.route(chat.model)
    backend = routed.node.backend
    request.state.backend_id = routed.node.id
    await backend.resolve_model(routed.model)
    check_capabilities(chat, backend.capabilities, backend.id, backend.kind)
    backend.check_request(chat)
    responder: ChatResponder
    if isinstance(backend, RelayBackend):  # it speaks the client's API: its answer, relayed
        from copilot_cli_proxy.routes.relay import RelayResponder  # it builds on this module

        responder = RelayResponder(request, chat, routed, body)
    else:
        responder = ChatResponder(request, chat, routed)
    request.state.outcome = responder.outcome
    return responder
