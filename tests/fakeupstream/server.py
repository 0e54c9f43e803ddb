"""A fake OpenAI-compatible upstream, for the ``kind = "openai"`` backend.

It follows the OpenAI wire format: ``GET /models`` (and GitHub Models' ``/catalog/models``),
``POST /chat/completions`` streamed or not, with tool calls streamed as ``tool_calls``
deltas, ``n`` choices, ``logprobs``, ``usage`` (``stream_options.include_usage``). It is
also an OAuth server: the RFC 8628 device flow (pending, slow_down, success, expired,
denied) and refresh tokens, with tokens that expire or get revoked.

A test scripts faults for the next chat requests: a status (429 with Retry-After, 500,
400…), a connection dropped mid-stream, a stall, an error event inside the stream.
Every request is recorded (headers, body) and every streamed event is kept as sent, so
a test can compare what reached the client with what the upstream said, byte for byte.

Runs in a thread of the test process on a free loopback port, like tests/fakemodel.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakemodel.server import ToolCall, serve_in_thread

__all__ = ["FakeUpstream", "Fault", "Recorded", "Reply", "ToolCall"]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass(frozen=True)
class Reply:
    """One answer; with ``n`` > 1, choice i says ``text`` followed by `` #i``."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    piece_chars: int = 4  # one streamed delta per this many characters (a "token")


@dataclass(frozen=True)
class Fault:
    """What goes wrong with the next chat request."""

    kind: Literal["status", "drop", "stall", "stream_error"]
    status: int = 500
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    after_chunks: int = 0  # drop / stall / stream_error: after this many events
    seconds: float = 30.0  # stall: how long (ended early when the fake stops)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # JSON, or the form as a dict, or None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


class Dropped(Exception):
    """Raised inside a stream: the server then breaks the connection mid-body."""


@dataclass
class Tokens:
    """The fake OAuth server's state."""

    access: dict[str, float | None] = field(default_factory=dict)  # token -> expires (monotonic)
    refresh: set[str] = field(default_factory=set)
    refreshes: int = 0
    device_script: deque[str] = field(default_factory=deque)
    device_polls: int = 0


class FakeUpstream:
    def __init__(
        self,
        *,
        models: tuple[str, ...] = ("gpt-4.1", "gpt-4.1-mini"),
        require_auth: bool = False,
        default_text: str = "Hello from the fake upstream.",
    ) -> None:
        self.models = models
        self.require_auth = require_auth  # only tokens it issued (or `accept`ed) pass
        self.refuse_all = False  # every credential gets 401, even a fresh one
        self.record = True  # keep requests and streamed events (off for benchmarks)
        self.default_text = default_text
        self.requests: list[Recorded] = []
        self.streams: list[list[str]] = []  # the data of every event sent, per stream
        self.stream_ends: list[str] = []  # "complete" | "cancelled" | "dropped"
        self.active_streams = 0
        self.tokens = Tokens()
        self.device_interval = 1
        self.device_errors_status = 400  # RFC 8628; GitHub sends them with 200
        self.token_lifetime_s: float | None = 3600
        self.refresh_delay_s = 0.0
        self.chunk_delay_s = 0.0
        self._replies: deque[Reply] = deque()
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = False
        self._stop: Any = None
        self.port = 0

    # -- scripting and inspection ---------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply | str) -> None:
        with self._lock:
            self._replies.extend(Reply(r) if isinstance(r, str) else r for r in replies)

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def accept(self, token: str, expires_in: float | None = None) -> None:
        with self._lock:
            expiry = None if expires_in is None else time.monotonic() + expires_in
            self.tokens.access[token] = expiry

    def issue(self) -> tuple[str, str]:
        """A fresh access token (valid ``token_lifetime_s``) and its refresh token."""
        access, refresh = f"at-{uuid.uuid4().hex}", f"rt-{uuid.uuid4().hex}"
        self.accept(access, self.token_lifetime_s)
        with self._lock:
            self.tokens.refresh.add(refresh)
        return access, refresh

    def revoke(self, token: str) -> None:
        with self._lock:
            self.tokens.access.pop(token, None)

    def chat_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def requests_to(self, suffix: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(suffix)]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return True
            time.sleep(0.01)
        return False

    # -- recording and auth -----------------------------------------------------------------

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        body: Any = None
        if raw:
            if request.headers.get("content-type", "").startswith("application/x-www-form"):
                body = dict(parse_qsl(raw.decode()))
            else:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
        if self.record:
            with self._lock:
                self.requests.append(
                    Recorded(request.method, request.url.path, dict(request.headers), body)
                )
        return body

    def _authorized(self, request: Request) -> bool:
        if self.refuse_all:
            return False
        if not self.require_auth:
            return True
        value = request.headers.get("authorization", "")
        if not value.startswith("Bearer "):
            return False
        with self._lock:
            if value[7:] not in self.tokens.access:
                return False
            expiry = self.tokens.access[value[7:]]
        return expiry is None or time.monotonic() < expiry

    @staticmethod
    def _unauthorized() -> Response:
        return JSONResponse(
            {"error": {"message": "Bad credentials", "type": "invalid_request_error"}}, 401
        )

    # -- models ------------------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        await self._record(request)
        if not self._authorized(request):
            return self._unauthorized()
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def _catalog(self, request: Request) -> Response:
        """GitHub Models' catalog shape (docs.github.com/rest/models/catalog)."""
        await self._record(request)
        if not self._authorized(request):
            return self._unauthorized()
        entries = [
            {
                "id": m,
                "name": f"Fake {m}",
                "publisher": m.partition("/")[0] or "fake",
                "supported_input_modalities": ["text", "image"],
                "supported_output_modalities": ["text"],
            }
            for m in self.models
        ]
        entries.append(
            {
                "id": "openai/text-embedding-3-small",
                "name": "Embeddings",
                "publisher": "OpenAI",
                "supported_output_modalities": ["embeddings"],
            }
        )
        return JSONResponse(entries)

    # -- chat --------------------------------------------------------------------------------

    def _next(self) -> tuple[Reply, Fault | None]:
        with self._lock:
            reply = self._replies.popleft() if self._replies else Reply(self.default_text)
            fault = self._faults.popleft() if self._faults else None
        return reply, fault

    async def _chat(self, request: Request) -> Response:
        body = await self._record(request)
        if not self._authorized(request):
            return self._unauthorized()
        reply, fault = self._next()
        if fault is not None and fault.kind == "status":
            error = fault.body or {
                "error": {
                    "message": f"fake status {fault.status}",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            return JSONResponse(error, fault.status, headers=fault.headers)
        if fault is not None and fault.kind == "stall" and fault.after_chunks < 0:
            await self._stall(fault.seconds)
        answer = Answer(body if isinstance(body, dict) else {}, reply)
        if not answer.body.get("stream"):
            return JSONResponse(answer.whole())
        return StreamingResponse(self._stream(answer, fault), media_type="text/event-stream")

    async def _stream(self, answer: Answer, fault: Fault | None) -> AsyncIterator[bytes]:
        sent: list[str] = []
        with self._lock:
            if self.record:
                self.streams.append(sent)
            self.active_streams += 1
        ending = "cancelled"
        try:
            for index, event in enumerate(answer.events()):
                if fault is not None and index == fault.after_chunks:
                    if fault.kind == "drop":
                        ending = "dropped"
                        raise Dropped("connection dropped by the fake upstream")
                    if fault.kind == "stall":
                        await self._stall(fault.seconds)
                    if fault.kind == "stream_error":
                        event = json.dumps(
                            {
                                "error": {
                                    "message": "fake failure mid-stream",
                                    "type": "server_error",
                                }
                            }
                        )
                if self.chunk_delay_s and index:
                    await anyio.sleep(self.chunk_delay_s)
                if self.record:
                    sent.append(event)
                yield f"data: {event}\n\n".encode()
            ending = "complete"
        finally:
            with self._lock:
                self.active_streams -= 1
                if self.record:
                    self.stream_ends.append(ending)

    async def _stall(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping:
            await anyio.sleep(0.02)

    # -- OAuth: the device flow and refresh tokens ----------------------------------------

    async def _device_code(self, request: Request) -> Response:
        form = await self._record(request)
        if not isinstance(form, dict) or not form.get("client_id"):
            return JSONResponse({"error": "invalid_client"}, 400)
        return JSONResponse(
            {
                "device_code": f"dc-{uuid.uuid4().hex}",
                "user_code": "WDJB-MJHT",
                "verification_uri": f"{self.url}/device",
                "expires_in": 900,
                "interval": self.device_interval,
            }
        )

    async def _token(self, request: Request) -> Response:
        form = await self._record(request)
        form = form if isinstance(form, dict) else {}
        if form.get("grant_type") == DEVICE_GRANT:
            with self._lock:
                self.tokens.device_polls += 1
                step = self.tokens.device_script.popleft() if self.tokens.device_script else "ok"
            if step != "ok":
                return JSONResponse({"error": step}, self.device_errors_status)
            return JSONResponse(self._grant())
        if form.get("grant_type") == "refresh_token":
            if self.refresh_delay_s:
                await anyio.sleep(self.refresh_delay_s)
            with self._lock:
                self.tokens.refreshes += 1
                valid = form.get("refresh_token") in self.tokens.refresh
                if valid:  # rotated: each refresh token works once
                    self.tokens.refresh.discard(form["refresh_token"])
            if not valid:
                return JSONResponse({"error": "invalid_grant"}, 400)
            return JSONResponse(self._grant())
        return JSONResponse({"error": "unsupported_grant_type"}, 400)

    def _grant(self) -> dict[str, Any]:
        access, refresh = self.issue()
        grant: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "refresh_token": refresh,
            "scope": "",
        }
        if self.token_lifetime_s is not None:
            grant["expires_in"] = self.token_lifetime_s
        return grant

    # -- the app and its lifetime -------------------------------------------------------------

    def app(self) -> Starlette:
        chat = ["/chat/completions", "/v1/chat/completions", "/inference/chat/completions"]
        return Starlette(
            routes=[
                *(Route(path, self._chat, methods=["POST"]) for path in chat),
                Route("/catalog/models", self._catalog, methods=["GET"]),
                Route("/models", self._models, methods=["GET"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/login/device/code", self._device_code, methods=["POST"]),
                Route("/login/oauth/access_token", self._token, methods=["POST"]),
            ]
        )

    def start(self) -> FakeUpstream:
        self._stop, self.port = serve_in_thread(self.app(), "the fake upstream")
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._stop is not None:
            self._stop()


class Answer:
    """One chat completion in the OpenAI wire format, whole or as stream events."""

    def __init__(self, body: dict[str, Any], reply: Reply) -> None:
        self.body = body
        self.reply = reply
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = str(body.get("model") or "fake-model")
        self.n = int(body.get("n") or 1)
        self.logprobs = bool(body.get("logprobs"))

    def text(self, index: int) -> str:
        return self.reply.text + (f" #{index}" if index else "")

    def pieces(self, index: int) -> Iterator[str]:
        text, size = self.text(index), self.reply.piece_chars
        return (text[i : i + size] for i in range(0, len(text), size))

    def calls(self) -> list[dict[str, Any]]:
        return [
            {
                "id": f"call_{i}_{self.id[-6:]}",
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for i, c in enumerate(self.reply.tool_calls)
        ]

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.reply.tool_calls else "stop"

    def usage(self) -> dict[str, int]:
        prompt = len(json.dumps(self.body.get("messages") or [])) // 4 + 1
        completion = sum(len(list(self.pieces(i))) for i in range(self.n))
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _logprobs(self, pieces: list[str]) -> dict[str, Any]:
        return {
            "content": [
                {"token": p, "logprob": -0.25, "bytes": list(p.encode()), "top_logprobs": []}
                for p in pieces
            ],
            "refusal": None,
        }

    def whole(self) -> dict[str, Any]:
        choices = []
        for index in range(self.n):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": self.text(index) or None,
                "refusal": None,
            }
            if self.reply.tool_calls:
                message["tool_calls"] = self.calls()
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": self._logprobs(list(self.pieces(index))) if self.logprobs else None,
                    "finish_reason": self.finish_reason,
                }
            )
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
            "usage": self.usage(),
        }

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> str:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI does, on every chunk but the last
        chunk.update(extra)
        return json.dumps(chunk)

    @property
    def include_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and bool(options.get("include_usage"))

    def _delta(
        self, index: int, delta: dict[str, Any], piece: str | None = None, finish: str | None = None
    ) -> dict[str, Any]:
        logprobs = self._logprobs([piece]) if self.logprobs and piece is not None else None
        return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}

    def events(self) -> Iterator[str]:
        """The data of every SSE event, [DONE] last."""
        calls = self.calls()
        for index in range(self.n):
            content = None if calls and not self.reply.text else ""
            yield self._chunk(
                [self._delta(index, {"role": "assistant", "content": content, "refusal": None})]
            )
        pieces = [list(self.pieces(i)) for i in range(self.n)]
        for step in range(max((len(p) for p in pieces), default=0)):
            for index in range(self.n):  # the choices' deltas interleave, as OpenAI's do
                if step < len(pieces[index]):
                    piece = pieces[index][step]
                    yield self._chunk([self._delta(index, {"content": piece}, piece)])
        for index in range(self.n):
            for number, call in enumerate(calls):
                arguments = call["function"]["arguments"]
                half = len(arguments) // 2
                head = {
                    "index": number,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                yield self._chunk([self._delta(index, {"tool_calls": [head]})])
                for part in (arguments[:half], arguments[half:]):
                    yield self._chunk(
                        [
                            self._delta(
                                index,
                                {
                                    "tool_calls": [
                                        {"index": number, "function": {"arguments": part}}
                                    ]
                                },
                            )
                        ]
                    )
            yield self._chunk([self._delta(index, {}, finish=self.finish_reason)])
        if self.include_usage:
            yield self._chunk([], usage=self.usage())
        yield "[DONE]"
