"""The fake upstream speaks the OpenAI wire format: the official SDK reads it directly."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.fakeupstream.server import FakeUpstream, Fault, Reply, ToolCall


@pytest.fixture
def sdk(fake: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.url, api_key="x", max_retries=0) as client:
        yield client


def test_the_sdk_assembles_a_streamed_answer_with_tool_calls_and_two_choices(
    fake: FakeUpstream, sdk: openai.OpenAI
) -> None:
    fake.script(Reply("Checking.", (ToolCall("get_weather", {"city": "Oslo"}),)))
    with sdk.chat.completions.stream(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "weather?"}],
        n=2,
        logprobs=True,
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    assert [c.message.content for c in final.choices] == ["Checking.", "Checking. #1"]
    call = final.choices[1].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.completion_tokens > 0


def test_the_sdk_reads_a_whole_answer_and_the_model_list(
    fake: FakeUpstream, sdk: openai.OpenAI
) -> None:
    answer = sdk.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], logprobs=True
    )
    assert answer.choices[0].message.content == fake.default_text
    assert answer.choices[0].logprobs is not None
    assert [m.id for m in sdk.models.list()] == list(fake.models)


def test_the_sdk_sees_the_scripted_429_with_its_retry_after(
    fake: FakeUpstream, sdk: openai.OpenAI
) -> None:
    fake.fail_next(Fault("status", status=429, headers={"Retry-After": "3"}))
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.response.headers["retry-after"] == "3"
