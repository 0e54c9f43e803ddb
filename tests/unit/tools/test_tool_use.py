"""tool_choice and parallel_tool_calls, applied to a backend's events."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest

from copilot_cli_proxy.backends.base import BackendEvent, Finish, TextDelta, ToolCallEvent
from copilot_cli_proxy.core.request import ChatRequest, Message, ToolSpec
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.tools.tool_use import (
    follow_tool_choice,
    offered_tools,
    tool_instruction,
)

TOOLS = (ToolSpec("a"), ToolSpec("b"))
CALL_A = ToolCallEvent("c1", "a", "{}")
CALL_B = ToolCallEvent("c2", "b", "{}")


def request(choice: Any = None, parallel: bool | None = None) -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=(Message("user", "hi"),),
        tools=TOOLS,
        tool_choice=choice,
        parallel_tool_calls=parallel,
    )


async def events_of(*events: BackendEvent) -> AsyncGenerator[BackendEvent, None]:
    for e in events:
        yield e


async def collect(req: ChatRequest, *events: BackendEvent) -> list[BackendEvent]:
    return [e async for e in follow_tool_choice(events_of(*events), req)]


NAMED_B = {"type": "function", "function": {"name": "b"}}


def test_offered_tools_per_choice() -> None:
    assert offered_tools(request("none")) == ()
    assert offered_tools(request("auto")) == TOOLS
    assert offered_tools(request()) == TOOLS
    assert offered_tools(request("required")) == TOOLS
    assert offered_tools(request(NAMED_B)) == (ToolSpec("b"),)


def test_required_and_named_choices_are_said_in_the_system_text() -> None:
    assert tool_instruction(request("auto")) == ""
    assert "calling one or more" in tool_instruction(request("required"))
    assert "calling the tool b" in tool_instruction(request(NAMED_B))


async def test_parallel_tool_calls_false_keeps_only_the_first_call() -> None:
    out = await collect(request(parallel=False), CALL_A, CALL_B, Finish("tool_calls"))
    assert out == [CALL_A, Finish("tool_calls")]
    out = await collect(request(), CALL_A, CALL_B, Finish("tool_calls"))
    assert out == [CALL_A, CALL_B, Finish("tool_calls")]


@pytest.mark.parametrize("choice", ["required", NAMED_B])
async def test_a_required_call_missing_is_tool_choice_not_followed(choice: Any) -> None:
    with pytest.raises(ProxyError) as caught:
        await collect(request(choice), TextDelta("I won't."), Finish("stop"))
    assert caught.value.code == "tool_choice_not_followed"
    assert caught.value.status == 502


async def test_a_required_call_lets_the_held_text_through_before_it() -> None:
    out = await collect(request("required"), TextDelta("Checking."), CALL_A, Finish("tool_calls"))
    assert out == [TextDelta("Checking."), CALL_A, Finish("tool_calls")]


async def test_a_named_choice_answered_with_another_tool_is_not_followed() -> None:
    with pytest.raises(ProxyError) as caught:
        await collect(request(NAMED_B), CALL_A, Finish("tool_calls"))
    assert caught.value.code == "tool_choice_not_followed"


async def test_auto_passes_a_text_answer_as_it_is() -> None:
    out = await collect(request("auto"), TextDelta("Hi"), Finish("stop"))
    assert out == [TextDelta("Hi"), Finish("stop")]


async def test_the_backends_events_are_closed_once_the_answer_is_complete() -> None:
    # Regression: left to the garbage collector, a run that ended with tool calls kept its
    # CLI alive past the answer, and the CLI went on without the client's results.
    closed = []

    async def backend() -> AsyncGenerator[BackendEvent, None]:
        try:
            yield CALL_A
            yield Finish("tool_calls")
            yield TextDelta("never read")
        finally:
            closed.append(True)

    out = [e async for e in follow_tool_choice(backend(), request())]
    assert out == [CALL_A, Finish("tool_calls")]
    assert closed == [True]
