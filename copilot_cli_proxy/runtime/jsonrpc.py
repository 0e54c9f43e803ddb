"""JSON-RPC 2.0 with LSP-style ``Content-Length`` framing, as ``copilot --headless --stdio``
speaks it. Framing is pure (``FrameDecoder``/``encode_frame``); ``JsonRpcPeer`` matches
responses to requests and hands notifications to a callback.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

MAX_FRAME_BYTES = 256 * 1024 * 1024  # a frame larger than this is a broken peer, not data


class FramingError(ValueError):
    pass


class JsonRpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


class PeerClosed(Exception):
    """The other side went away; every pending request fails with this."""


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class FrameDecoder:
    """Bytes in, whole JSON messages out, however the pipe split them."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self._buffer.extend(data)
        messages: list[Any] = []
        while True:
            header_end = self._buffer.find(b"\r\n\r\n")
            if header_end < 0:
                if len(self._buffer) > 8192:
                    raise FramingError("no frame header within 8 KiB")
                return messages
            length = self._content_length(bytes(self._buffer[:header_end]))
            start = header_end + 4
            if len(self._buffer) < start + length:
                return messages
            body = bytes(self._buffer[start : start + length])
            del self._buffer[: start + length]
            try:
                messages.append(json.loads(body))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise FramingError(f"frame is not JSON: {exc}") from None

    @staticmethod
    def _content_length(header: bytes) -> int:
        for line in header.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise FramingError(f"bad Content-Length {value!r}") from None
                if not 0 <= length <= MAX_FRAME_BYTES:
                    raise FramingError(f"Content-Length {length} out of range")
                return length
        raise FramingError("frame header has no Content-Length")


@dataclass(slots=True)
class _Pending:
    done: anyio.Event = field(default_factory=anyio.Event)
    result: Any = None
    error: BaseException | None = None


NotificationHandler = Callable[[str, Any], None]
RequestHandler = Callable[[str, Any], Awaitable[Any]]
Send = Callable[[bytes], Awaitable[None]]


class JsonRpcPeer:
    """One JSON-RPC connection. The owner feeds it every decoded message (``dispatch``)."""

    def __init__(
        self,
        send: Send,
        on_notification: NotificationHandler,
        on_request: RequestHandler | None = None,
    ) -> None:
        self._send = send
        self._on_notification = on_notification
        self._on_request = on_request
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._write_lock = anyio.Lock()
        self._closed: BaseException | None = None

    async def _write(self, message: dict[str, Any]) -> None:
        async with self._write_lock:
            await self._send(encode_frame(message))

    async def request(self, method: str, params: Any = None) -> Any:
        if self._closed is not None:
            raise PeerClosed(str(self._closed))
        self._next_id += 1
        request_id = self._next_id
        pending = self._pending[request_id] = _Pending()
        try:
            message = {"jsonrpc": "2.0", "id": request_id, "method": method}
            if params is not None:
                message["params"] = params
            await self._write(message)
            await pending.done.wait()
        finally:
            self._pending.pop(request_id, None)
        if pending.error is not None:
            raise pending.error
        return pending.result

    async def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._write(message)

    def dispatch(self, message: Any) -> Awaitable[None] | None:
        """Handle one incoming message. Returns a coroutine to run when it is a request
        from the peer (the caller decides which task runs it), else None."""
        if not isinstance(message, dict):
            return None
        if "method" in message:
            method = str(message["method"])
            if "id" in message:
                return self._answer(message["id"], method, message.get("params"))
            self._on_notification(method, message.get("params"))
            return None
        request_id = message.get("id")
        pending = self._pending.get(request_id) if isinstance(request_id, int) else None
        if pending is None:
            return None
        error = message.get("error")
        if isinstance(error, dict):
            pending.error = JsonRpcError(
                int(error.get("code", -32603)), str(error.get("message", "")), error.get("data")
            )
        else:
            pending.result = message.get("result")
        pending.done.set()
        return None

    async def _answer(self, request_id: Any, method: str, params: Any) -> None:
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        try:
            if self._on_request is None:
                raise JsonRpcError(-32601, f"{method} is not supported by this client")
            reply["result"] = await self._on_request(method, params)
        except JsonRpcError as exc:
            reply["error"] = {"code": exc.code, "message": exc.message}
        try:
            await self._write(reply)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass

    def close(self, reason: BaseException) -> None:
        """The connection is gone: fail every pending and future request."""
        self._closed = reason
        for pending in list(self._pending.values()):
            pending.error = PeerClosed(str(reason))
            pending.done.set()
