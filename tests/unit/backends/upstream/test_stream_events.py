"""An OpenAI-compatible upstream behind the plain ``Backend.stream()``: its answer as events.

The chat route relays such an upstream's chunks as they are; ``stream()`` is what any
other caller of the one interface gets (a failover pool, another API surface).
"""

from __future__ import annotations

import json
from contextlib import aclosing

from copilot_cli_proxy.backends.openai_events import ToolCallAssembler, events_of
from copilot_cli_proxy.backends.openai_http import OpenAIUpstreamBackend
from copilot_cli_proxy.core.backend import RunRecord
from copilot_cli_proxy.core.request import ChatRequest, Message
from copilot_cli_proxy.core.types import BackendEvent, Finish, TextDelta, ToolCallEvent, Usage
from tests.fakeupstream.server import FakeUpstream, Reply, ToolCall


async def events(backend: OpenAIUpstreamBackend, record: RunRecord) -> list[BackendEvent]:
    request = ChatRequest(model="fake-model", messages=(Message("user", "hi"),))
    async with aclosing(backend.stream(request, record)) as stream:
        return [event async for event in stream]


async def test_text_usage_then_finish(fake: FakeUpstream, backend: OpenAIUpstreamBackend) -> None:
    fake.script(Reply("hello there"))
    record = RunRecord()
    got = await events(backend, record)
    assert "".join(e.text for e in got if isinstance(e, TextDelta)) == "hello there"
    # The usage chunk comes after the finish_reason one; Finish still ends the events.
    assert isinstance(got[-2], Usage) and got[-2].completion_tokens
    assert got[-1] == Finish("stop")
    assert record.cli is None, "an HTTP backend has no CLI details"
    (sent,) = fake.chat_requests()
    assert sent.body["stream"] is True and sent.body["messages"][0]["content"] == "hi"


async def test_tool_calls_come_whole_before_the_finish(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    fake.script(Reply(tool_calls=(ToolCall("get_weather", {"city": "Oslo"}),)))
    got = await events(backend, RunRecord())
    calls = [e for e in got if isinstance(e, ToolCallEvent)]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert calls[0].id.startswith("call_")
    assert got[-1] == Finish("tool_calls")


def test_tool_call_pieces_are_joined_by_index() -> None:
    calls = ToolCallAssembler()
    first = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a":'}}
    second = {"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}
    rest = {"index": 0, "function": {"arguments": " 1}"}}
    for delta in ({"tool_calls": [first, second]}, {"tool_calls": [rest, "junk"]}):
        assert events_of({"choices": [{"delta": delta}]}, calls) == []
    done = events_of({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}, calls)
    assert done == [
        ToolCallEvent("c1", "f", '{"a": 1}'),
        ToolCallEvent("c2", "g", "{}"),
        Finish("tool_calls"),
    ]


def test_an_unknown_finish_reason_is_a_stop_and_odd_chunks_are_no_events() -> None:
    calls = ToolCallAssembler()
    assert events_of({"choices": [{"finish_reason": "weird"}]}, calls) == [Finish("stop")]
    assert events_of({"choices": "nope"}, calls) == []
    assert events_of({"choices": [{"delta": {"content": 3}}]}, calls) == []
