"""The fake model API the real-CLI suite runs against: it must follow both wire formats."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.fakemodel.server import FakeModelApi, Reply, ToolCall


@pytest.fixture
def api() -> Iterator[FakeModelApi]:
    fake = FakeModelApi().start()
    try:
        yield fake
    finally:
        fake.stop()


def sse_data(text: str) -> list[dict[str, object]]:
    return [
        json.loads(line[6:])
        for line in text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def test_anthropic_stream_records_the_request_and_streams_the_scripted_reply(
    api: FakeModelApi,
) -> None:
    api.script(Reply("Hi there, friend", (ToolCall("get_weather", {"city": "Oslo"}),)))
    body = {
        "model": "m",
        "stream": True,
        "system": [{"type": "text", "text": "SYS"}],
        "messages": [{"role": "user", "content": "question"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
    }
    response = httpx.post(api.url + "/v1/messages", json=body)
    events = sse_data(response.text)
    text = "".join(
        e["delta"]["text"]  # type: ignore[index]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"  # type: ignore[index]
    )
    assert text == "Hi there, friend"
    tool_start = [e for e in events if e["type"] == "content_block_start"][-1]
    assert tool_start["content_block"]["name"] == "get_weather"  # type: ignore[index]
    assert events[-1]["type"] == "message_stop"
    [call] = api.model_calls()
    assert call.system_text == "SYS"
    assert call.conversation_text == "question"
    assert call.tool_names == ["get_weather"]


def test_openai_stream_then_default_reply(api: FakeModelApi) -> None:
    api.script("first")
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "q"}]}
    chunks = [sse_data(httpx.post(api.url + "/chat/completions", json=body).text) for _ in range(2)]
    texts = [
        "".join(c["choices"][0]["delta"].get("content") or "" for c in run)  # type: ignore[index, union-attr]
        for run in chunks
    ]
    assert texts == ["first", api.default_text]
    assert [c.wire for c in api.model_calls()] == ["openai", "openai"]


def test_get_is_not_found_and_recorded(api: FakeModelApi) -> None:
    assert httpx.get(api.url + "/v1/models").status_code == 404
    assert api.calls[-1].path == "/v1/models"
    assert api.model_calls() == []
