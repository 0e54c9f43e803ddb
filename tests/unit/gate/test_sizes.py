"""Body, message-count and prompt-size limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.gate.sizes import check_message_count, check_prompt_size
from copilot_cli_proxy.protocol.requests import ChatRequest, Message
from tests.unit.scripted import MODEL, chat_body, client, scripted_app

LIMIT = 4096


def app_client(tmp_path: Path, **overrides: object) -> httpx.AsyncClient:
    return client(scripted_app(tmp_path, **{"max_body_bytes": LIMIT, **overrides}))


async def test_declared_length_over_the_limit_is_413_before_reading(tmp_path: Path) -> None:
    async with app_client(tmp_path) as http:
        response = await http.post("/v1/chat/completions", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_too_large"
    assert str(LIMIT) in error["message"] and "MAX_BODY_BYTES" in error["message"]


async def test_chunked_body_over_the_limit_is_413_and_not_read_to_the_end(
    tmp_path: Path,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(10_000):  # 10 MB if it were all read
            sent += 1
            yield b"y" * 1024

    async with app_client(tmp_path) as http:
        response = await http.post("/v1/chat/completions", content=chunks())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert sent < 20


async def test_body_at_the_limit_passes(tmp_path: Path) -> None:
    body = chat_body("z")
    raw = json.dumps(body).encode()
    raw = raw[:-1] + b" " * (LIMIT - len(raw)) + b"}"
    assert len(raw) == LIMIT
    async with app_client(tmp_path) as http:
        response = await http.post("/v1/chat/completions", content=raw)
    assert response.status_code == 200


async def test_too_many_messages_is_400_naming_the_limit(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "hi"}] * 11
    async with app_client(tmp_path, max_messages=10, max_body_bytes=1 << 20) as http:
        response = await http.post(
            "/v1/chat/completions", json={"model": MODEL, "messages": messages}
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "too_many_messages"
        assert error["param"] == "messages"
        assert "11" in error["message"] and "MAX_MESSAGES" in error["message"]
        ok = await http.post(
            "/v1/chat/completions", json={"model": MODEL, "messages": messages[:10]}
        )
        assert ok.status_code == 200


async def test_prompt_over_the_limit_is_413(tmp_path: Path) -> None:
    async with app_client(tmp_path, max_prompt_bytes=100, max_body_bytes=1 << 20) as http:
        response = await http.post("/v1/chat/completions", json=chat_body("한" * 34))  # 102 bytes
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "prompt_too_large"
        assert "MAX_PROMPT_BYTES" in response.json()["error"]["message"]
        ok = await http.post("/v1/chat/completions", json=chat_body("한" * 33))
        assert ok.status_code == 200


def test_message_count_is_checked_before_parsing() -> None:
    # Not even valid messages: the count alone refuses it, no parse of 5 000 objects.
    with pytest.raises(ProxyError) as caught:
        check_message_count({"messages": [None] * 5000}, 1000)
    assert caught.value.code == "too_many_messages"
    check_message_count({"messages": "not a list"}, 1)  # parsing reports that one
    check_message_count({}, 1)


def test_prompt_size_counts_utf8_bytes_across_messages() -> None:
    chat = ChatRequest(
        model=MODEL,
        messages=(Message("system", "é" * 10), Message("user", "🎉" * 5)),  # 20 + 20 bytes
    )
    check_prompt_size(chat, 40)
    with pytest.raises(ProxyError) as caught:
        check_prompt_size(chat, 39)
    assert caught.value.status == 413
