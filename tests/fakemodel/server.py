"""A fake model API for running the real CLIs end to end without a login.

It speaks the two wire formats the CLIs use: Anthropic Messages (``POST /v1/messages``,
streamed or not; claude always, copilot in BYOK ``anthropic`` mode) and OpenAI chat
completions (``POST /chat/completions``; copilot BYOK ``openai`` mode). Every model
request is recorded as it was received, so a test can see what the real CLI sent to
the model: the system text, the messages (with any file it attached) and the tools it
offered. A test scripts the answers: plain text, or tool calls.

It runs in a thread of the test process (``FakeModelApi.start()``), on a free loopback
port, and answers ``GET`` requests (model lists, update checks) with 404.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One model turn: some text, then (optionally) tool calls."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass
class ModelCall:
    """One request a CLI made to the model, as received."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def wire(self) -> str:
        return "anthropic" if self.path.endswith("/messages") else "openai"

    @property
    def tool_names(self) -> list[str]:
        names = []
        for tool in self.body.get("tools") or []:
            if not isinstance(tool, dict):
                continue
            function = tool.get("function")
            names.append(
                str(function.get("name") if isinstance(function, dict) else tool.get("name"))
            )
        return names

    @property
    def system_text(self) -> str:
        """All system text, whichever wire format carried it."""
        if self.wire == "anthropic":
            return _text_of(self.body.get("system"))
        return "\n".join(
            _text_of(m.get("content"))
            for m in self.body.get("messages") or []
            if isinstance(m, dict) and m.get("role") in ("system", "developer")
        )

    @property
    def conversation_text(self) -> str:
        """All non-system message text (including tool results and attached files)."""
        return "\n".join(
            _text_of(m.get("content"))
            for m in self.body.get("messages") or []
            if isinstance(m, dict) and m.get("role") not in ("system", "developer")
        )

    @property
    def everything(self) -> str:
        """The whole request as text: what a secret must never appear in."""
        return json.dumps(self.body, ensure_ascii=False)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                for key in ("text", "content", "input"):
                    if key in block:
                        value = block[key]
                        parts.append(value if isinstance(value, str) else _text_of(value))
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    if isinstance(content, dict):
        return json.dumps(content, ensure_ascii=False)
    return ""


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _usage_counts(body: dict[str, Any], text: str) -> tuple[int, int]:
    return len(json.dumps(body.get("messages") or [])) // 4 + 1, max(1, len(text) // 4)


def _sse(event: str | None, data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class FakeModelApi:
    """The fake API and its scripted answers; one per test."""

    def __init__(self, default_text: str = "Hello from the fake model.") -> None:
        self.default_text = default_text
        self.calls: list[ModelCall] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.delay_s = 0.0  # before each answer: lets a test disconnect or time out mid-run
        self.chunk_delay_s = 0.0  # between streamed pieces
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- scripting and inspection ----------------------------------------------------------

    def script(self, *replies: Reply | str) -> None:
        """Answers for the next model turns, in order; then ``default_text``."""
        with self._lock:
            for reply in replies:
                self._replies.append(Reply(text=reply) if isinstance(reply, str) else reply)

    def model_calls(self) -> list[ModelCall]:
        """Recorded calls that were real chat turns (not token counts or warm-ups)."""
        with self._lock:
            return [c for c in self.calls if c.body.get("messages")]

    def wait_for_calls(self, count: int, timeout: float = 30.0) -> list[ModelCall]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.model_calls()
            if len(calls) >= count:
                return calls
            time.sleep(0.02)
        return self.model_calls()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            # A side request the CLI makes on its own (naming the session, …) offers no
            # tools: a scripted tool call is kept for the turn that can make it.
            if self._replies and (body.get("tools") or not self._replies[0].tool_calls):
                return self._replies.popleft()
        return Reply(text=self.default_text)

    # -- the app ------------------------------------------------------------------------------

    async def _record(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        with self._lock:
            self.calls.append(ModelCall(request.url.path, body, dict(request.headers)))
        return body

    async def _anthropic(self, request: Request) -> Response:
        body = await self._record(request)
        if request.url.path.endswith("/count_tokens"):
            return JSONResponse({"input_tokens": _usage_counts(body, "")[0]})
        reply = self._next_reply(body)
        if self.delay_s:
            await _sleep(self.delay_s)
        model = str(body.get("model") or "fake-model")
        if not body.get("stream"):
            return JSONResponse(self._anthropic_message(body, reply, model))
        return StreamingResponse(
            self._anthropic_stream(body, reply, model), media_type="text/event-stream"
        )

    def _anthropic_message(self, body: dict[str, Any], reply: Reply, model: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for call in reply.tool_calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": _id("toolu_"),
                    "name": call.name,
                    "input": call.arguments,
                }
            )
        prompt, completion = _usage_counts(body, reply.text)
        return {
            "id": _id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        }

    async def _anthropic_stream(
        self, body: dict[str, Any], reply: Reply, model: str
    ) -> AsyncIterator[bytes]:
        prompt, completion = _usage_counts(body, reply.text)
        message = self._anthropic_message(body, reply, model)
        start = {**message, "content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": prompt, "output_tokens": 1}
        yield _sse("message_start", {"type": "message_start", "message": start})
        index = 0
        if reply.text:
            yield _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            for piece in _pieces(reply.text):
                if self.chunk_delay_s:
                    await _sleep(self.chunk_delay_s)
                delta = {"type": "text_delta", "text": piece}
                yield _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            index = 1
        for block in message["content"]:
            if block["type"] != "tool_use":
                continue
            start_block = {**block, "input": {}}
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start_block},
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            yield _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": completion},
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})

    async def _openai(self, request: Request) -> Response:
        body = await self._record(request)
        reply = self._next_reply(body)
        if self.delay_s:
            await _sleep(self.delay_s)
        model = str(body.get("model") or "fake-model")
        calls = [
            {
                "id": _id("call_"),
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in reply.tool_calls
        ]
        prompt, completion = _usage_counts(body, reply.text)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        finish = "tool_calls" if calls else "stop"
        ident = _id("chatcmpl-")
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
            if calls:
                message["tool_calls"] = calls
            return JSONResponse(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                }
            )

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            return _sse(
                None,
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                },
            )

        async def stream() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": ""})
            for piece in _pieces(reply.text):
                if self.chunk_delay_s:
                    await _sleep(self.chunk_delay_s)
                yield chunk({"content": piece})
            for i, call in enumerate(calls):
                yield chunk({"tool_calls": [{"index": i, **call}]})
            yield chunk({}, finish)
            if (body.get("stream_options") or {}).get("include_usage"):
                yield _sse(
                    None,
                    {
                        "id": ident,
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    },
                )
            yield _sse(None, "[DONE]")

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def _not_found(self, request: Request) -> Response:
        await self._record(request)
        return JSONResponse({"error": {"type": "not_found_error", "message": "no"}}, 404)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/messages", self._anthropic, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._anthropic, methods=["POST"]),
                Route("/chat/completions", self._openai, methods=["POST"]),
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
                Route("/{path:path}", self._not_found, methods=["GET", "POST", "HEAD"]),
            ]
        )

    # -- lifetime -----------------------------------------------------------------------------

    def start(self) -> FakeModelApi:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake model API did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)


def _pieces(text: str, size: int = 8) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


@dataclass
class RealCliEnv:
    """Environment that points a real CLI at a fake model API, with a private HOME."""

    api: FakeModelApi
    home: str
    model: str = "claude-sonnet-4.6"
    extra: dict[str, str] = field(default_factory=dict)

    def claude(self) -> dict[str, str]:
        return {
            "HOME": self.home,
            "ANTHROPIC_BASE_URL": self.api.url,
            "ANTHROPIC_API_KEY": "fake-key-for-tests",
            **self.extra,
        }

    def copilot(self, wire: str = "anthropic") -> dict[str, str]:
        return {
            "HOME": self.home,
            "COPILOT_PROVIDER_BASE_URL": self.api.url + ("/v1" if wire == "openai" else ""),
            "COPILOT_PROVIDER_TYPE": wire,
            "COPILOT_PROVIDER_API_KEY": "fake-key-for-tests",
            "COPILOT_OFFLINE": "true",
            "COPILOT_MODEL": self.model,
            **self.extra,
        }
