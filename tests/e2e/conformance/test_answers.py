"""The contract of an answer, over every backend kind and runner: the OpenAI shape of a
whole answer and of a stream, usage, UTF-8 byte for byte, and a multi-MiB prompt."""

from __future__ import annotations

import json

import openai
import pytest

from tests.e2e.harness import ask
from tests.e2e.targets import Target

MULTIBYTE = "안녕하세요 世界 🎉 👩‍👩‍👧 café — ünïcödé ✓"


def test_non_stream_answer_has_openai_shape_and_real_usage(target: Target) -> None:
    prompt = "hello there"
    completion = target.server.client().chat.completions.create(
        model=target.model, messages=ask(prompt)
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == target.model
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == target.expected_echo(prompt)
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens == target.completion_tokens(target.expected_echo(prompt))
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    target.settle()


def test_stream_arrives_in_pieces_with_role_first_and_usage_last(target: Target) -> None:
    chunks = list(
        target.server.client().chat.completions.create(
            model=target.model,
            messages=target.answering(MULTIBYTE),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 1, "the answer streams as the backend produces it, not as one lump"
    assert "".join(pieces) == MULTIBYTE
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert usage_chunks[0].choices == []
    assert usage_chunks[0].usage is not None and usage_chunks[0].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1
    assert {c.model for c in chunks} == {target.model}
    target.settle()


def test_stream_without_include_usage_has_no_usage_chunk(target: Target) -> None:
    chunks = list(
        target.server.client().chat.completions.create(
            model=target.model, messages=ask("hi"), stream=True
        )
    )
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    target.settle()


def test_non_stream_text_arrives_byte_exact(target: Target) -> None:
    completion = target.server.client().chat.completions.create(
        model=target.model, messages=target.answering(MULTIBYTE)
    )
    assert completion.choices[0].message.content == MULTIBYTE
    target.settle()


def test_sse_wire_format_is_utf8_data_frames_ending_with_done(target: Target) -> None:
    body = {"model": target.model, "messages": target.answering(MULTIBYTE), "stream": True}
    with (
        target.server.http() as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(response.iter_bytes())
    frames = [f for f in raw.split(b"\n\n") if f]
    assert all(f.startswith(b"data: ") for f in frames)
    assert frames[-1] == b"data: [DONE]"
    assert all("error" not in json.loads(f[6:]) for f in frames[:-1])
    assert "🎉".encode() in raw
    assert b"\\u" not in raw  # sent as UTF-8, not \u escapes
    target.settle()


def test_a_three_mib_prompt_is_answered(target: Target) -> None:
    big = "x" * (3 * 1024 * 1024)
    client = target.server.client()
    if not target.takes_a_prompt_of_any_size:
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model=target.model, messages=ask(big + "\nthe end"))
        assert caught.value.status_code == 413
        assert caught.value.body["code"] == "prompt_too_large"  # type: ignore[index]
        target.settle()
        return
    completion = client.chat.completions.create(model=target.model, messages=ask(big + "\nthe end"))
    assert completion.choices[0].message.content == target.expected_echo("the end")
    if target.upstream is not None:  # the whole prompt reached the model
        sent = target.upstream.chat_requests()[-1].body
        assert sent["messages"][-1]["content"] == big + "\nthe end"
    target.settle()
