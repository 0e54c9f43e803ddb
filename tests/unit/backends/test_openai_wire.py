"""The OpenAI wire format as sent upstream and read back: body, SSE events, model lists."""

from __future__ import annotations

from typing import Any

import pytest

from copilot_cli_proxy.backends.openai_wire import (
    SseDecoder,
    configured_models,
    finishes,
    parse_model_list,
    stream_error,
    upstream_payload,
)
from copilot_cli_proxy.core.types import ModelInfo


def test_payload_streams_with_usage_and_keeps_every_other_field() -> None:
    body = {
        "model": "alias",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "n": 2,
        "stream_options": {"other": 1},
    }
    payload = upstream_payload(body, model="gpt-4.1", stream=True, include_usage=True)
    assert payload == {
        **body,
        "model": "gpt-4.1",
        "stream": True,
        "stream_options": {"other": 1, "include_usage": True},
    }
    assert body["model"] == "alias"  # the client's body is not changed


def test_payload_without_stream_drops_stream_and_its_options() -> None:
    body = {"model": "a", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    assert upstream_payload(body, model="m", stream=False, include_usage=True) == {
        "model": "m",
        "messages": [],
    }


def test_payload_without_usage_asks_for_none() -> None:
    payload = upstream_payload({"messages": []}, model="m", stream=True, include_usage=False)
    assert "stream_options" not in payload


def feed(decoder: SseDecoder, text: str) -> list[str]:
    out = [decoder.feed(line) for line in text.split("\n")]
    return [d for d in out if d is not None]


def test_sse_events_join_data_lines_and_skip_comments_and_fields() -> None:
    decoder = SseDecoder()
    text = ': keep-alive\n\nevent: x\nid: 4\ndata: {"a":\ndata:1}\n\ndata:[DONE]\n\n'
    assert feed(decoder, text) == ['{"a":\n1}', "[DONE]"]


def test_sse_event_left_open_at_the_end_is_returned() -> None:
    decoder = SseDecoder()
    assert feed(decoder, 'data: {"x": 1}') == []
    assert decoder.end() == '{"x": 1}'
    assert decoder.end() is None


@pytest.mark.parametrize(
    ("chunk", "done"),
    [
        ({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, True),
        ({"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]}, False),
        ({"choices": [], "usage": {}}, False),
        ({"choices": "odd"}, False),
    ],
)
def test_finishes(chunk: dict[str, Any], done: bool) -> None:
    assert finishes(chunk) is done


def test_stream_error_shapes() -> None:
    assert stream_error({"error": {"message": "boom"}}) == "boom"
    assert stream_error({"error": "plain"}) == "plain"
    assert stream_error({"choices": []}) is None


def test_openai_model_list() -> None:
    data = {"object": "list", "data": [{"id": "gpt-4.1", "owned_by": "openai"}, {"no": "id"}]}
    assert parse_model_list(data, "openai", "up") == [ModelInfo("gpt-4.1", "openai")]


def test_github_catalog_keeps_chat_models_with_publisher_and_name() -> None:
    data = [
        {"id": "openai/gpt-4.1", "name": "OpenAI GPT-4.1", "publisher": "OpenAI",
         "supported_output_modalities": ["text"]},
        {"id": "openai/text-embedding-3-small", "publisher": "OpenAI",
         "supported_output_modalities": ["embeddings"]},
    ]  # fmt: skip
    assert parse_model_list(data, "github", "gh") == [
        ModelInfo("openai/gpt-4.1", "OpenAI", "OpenAI GPT-4.1")
    ]


def test_a_model_list_of_another_shape_is_an_error() -> None:
    with pytest.raises(ValueError, match="neither"):
        parse_model_list({"models": []}, "openai", "up")


def test_configured_models_are_owned_by_their_prefix_or_their_name() -> None:
    assert configured_models(("meta/llama-3", "gpt-4o", "my-model"), "local") == [
        ModelInfo("meta/llama-3", "meta"),
        ModelInfo("gpt-4o", "openai"),
        ModelInfo("my-model", "local"),
    ]
