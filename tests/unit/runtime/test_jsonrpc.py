"""JSON-RPC framing and request/response matching, as copilot --headless --stdio speaks it."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from copilot_cli_proxy.runtime.jsonrpc import (
    FrameDecoder,
    FramingError,
    JsonRpcError,
    JsonRpcPeer,
    PeerClosed,
    encode_frame,
)

MESSAGES: list[dict[str, Any]] = [
    {"jsonrpc": "2.0", "id": 1, "result": {"text": "안녕하세요 🎉"}},
    {"jsonrpc": "2.0", "method": "session.event", "params": {"event": {"type": "x" * 5000}}},
    {"jsonrpc": "2.0", "id": 2, "error": {"code": -32603, "message": "Not authenticated"}},
]


def test_frame_is_content_length_of_utf8_bytes() -> None:
    frame = encode_frame({"a": "é"})
    header, body = frame.split(b"\r\n\r\n", 1)
    assert header == b"Content-Length: %d" % len(body)
    assert json.loads(body) == {"a": "é"}
    assert "é".encode() in body  # raw UTF-8, counted in bytes


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64, 100_000])
def test_decoder_reassembles_frames_however_the_pipe_splits_them(piece: int) -> None:
    stream = b"".join(encode_frame(m) for m in MESSAGES)
    decoder = FrameDecoder()
    out: list[Any] = []
    for start in range(0, len(stream), piece):
        out.extend(decoder.feed(stream[start : start + piece]))
    assert out == MESSAGES


def test_decoder_accepts_extra_headers_in_any_case() -> None:
    body = b'{"id":1}'
    frame = b"Content-Type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    assert FrameDecoder().feed(frame) == [{"id": 1}]


@pytest.mark.parametrize(
    "raw",
    [
        b"Content-Length: nope\r\n\r\n{}",
        b"Content-Length: -1\r\n\r\n",
        b"X: 1\r\n\r\n{}",
        b"Content-Length: 2\r\n\r\n{x",
        b"x" * 9000,
    ],
)
def test_decoder_rejects_broken_frames(raw: bytes) -> None:
    with pytest.raises(FramingError):
        FrameDecoder().feed(raw)


class Wire:
    """Collects what a peer writes; answers can be fed back with ``dispatch``."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.notifications: list[tuple[str, Any]] = []
        self.decoder = FrameDecoder()

    async def send(self, data: bytes) -> None:
        self.sent.extend(self.decoder.feed(data))


async def test_request_gets_its_own_response_out_of_order() -> None:
    wire = Wire()
    peer = JsonRpcPeer(wire.send, lambda m, p: wire.notifications.append((m, p)))
    results: dict[str, Any] = {}

    async def call(name: str) -> None:
        results[name] = await peer.request(name, {"n": name})

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "first")
        tg.start_soon(call, "second")
        while len(wire.sent) < 2:
            await anyio.sleep(0)
        by_method = {m["method"]: m["id"] for m in wire.sent}
        peer.dispatch({"jsonrpc": "2.0", "method": "note", "params": [1]})
        peer.dispatch({"jsonrpc": "2.0", "id": by_method["second"], "result": 2})
        peer.dispatch({"jsonrpc": "2.0", "id": by_method["first"], "result": 1})
    assert results == {"first": 1, "second": 2}
    assert wire.notifications == [("note", [1])]


async def test_error_response_raises_with_code() -> None:
    wire = Wire()
    peer = JsonRpcPeer(wire.send, lambda m, p: None)
    caught: list[JsonRpcError] = []

    async def call() -> None:
        try:
            await peer.request("models.list")
        except JsonRpcError as exc:
            caught.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        while not wire.sent:
            await anyio.sleep(0)
        error = {"code": -32603, "message": "Not authenticated"}
        peer.dispatch({"jsonrpc": "2.0", "id": wire.sent[0]["id"], "error": error})
    assert [e.code for e in caught] == [-32603]
    assert caught[0].message == "Not authenticated"


async def test_closing_fails_pending_and_later_requests() -> None:
    wire = Wire()
    peer = JsonRpcPeer(wire.send, lambda m, p: None)
    failures: list[BaseException] = []

    async def call() -> None:
        try:
            await peer.request("session.send")
        except PeerClosed as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        while not wire.sent:
            await anyio.sleep(0)
        peer.close(PeerClosed("the copilot CLI process exited"))
    assert len(failures) == 1
    with pytest.raises(PeerClosed):
        await peer.request("ping")


async def test_requests_from_the_cli_are_refused_without_a_handler() -> None:
    wire = Wire()
    peer = JsonRpcPeer(wire.send, lambda m, p: None)
    reply = peer.dispatch({"jsonrpc": "2.0", "id": 7, "method": "userInput.request", "params": {}})
    assert reply is not None
    await reply
    assert wire.sent == [
        {
            "jsonrpc": "2.0",
            "id": 7,
            "error": {
                "code": -32601,
                "message": "userInput.request is not supported by this client",
            },
        }
    ]
