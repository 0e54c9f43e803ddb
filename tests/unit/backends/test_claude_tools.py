"""Reading the model's tool calls from claude's stream-json, and the flags for the CLI."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from copilot_cli_proxy.backends.base import BackendEvent, Finish, TextDelta, ToolCallEvent
from copilot_cli_proxy.backends.claude_cli import build_claude_argv
from copilot_cli_proxy.backends.claude_tools import ClaudeToolParser
from copilot_cli_proxy.tools.request_tools import until_tool_calls


def assistant(message_id: str, *blocks: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "assistant",
        "message": {"id": message_id, "role": "assistant", "content": list(blocks)},
        "parent_tool_use_id": None,
    }


def tool_use(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": args}


def event(kind: str) -> dict[str, Any]:
    return {"type": "stream_event", "event": {"type": kind}}


def tool_result_line(call_id: str) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": call_id, "content": "x", "is_error": True}
    return {"type": "user", "message": {"role": "user", "content": [block]}}


def test_parallel_tool_uses_end_the_answer_at_message_stop_with_all_calls() -> None:
    # As the real CLI writes it: each block its own assistant line, the CLI's own tool
    # result between them, the message's end after the last one.
    parser = ClaudeToolParser()
    lines = [
        assistant("m1", {"type": "text", "text": "Let me check."}),
        assistant("m1", tool_use("toolu_1", "mcp__client__get_weather", {"city": "Paris"})),
        tool_result_line("toolu_1"),
        assistant("m1", tool_use("toolu_2", "mcp__client__get_time", {"tz": "CET"})),
        tool_result_line("toolu_2"),
    ]
    events = [e for line in lines for e in parser.feed(line)]
    assert events == [TextDelta("Let me check.")]
    assert not parser.done
    assert parser.feed(event("message_stop")) == [
        ToolCallEvent("toolu_1", "get_weather", '{"city": "Paris"}'),
        ToolCallEvent("toolu_2", "get_time", '{"tz": "CET"}'),
        Finish("tool_calls"),
    ]
    assert parser.done
    # Whatever the CLI writes after that is not the answer.
    assert parser.feed(assistant("m2", {"type": "text", "text": "more"})) == []


def test_the_structured_output_tool_is_not_a_client_call() -> None:
    """Regression: with tools and response_format, claude's own StructuredOutput call (how
    the --json-schema answer comes) was returned to the client as a tool call."""
    parser = ClaudeToolParser(structured=True)
    answer = {"city": "Paris", "sky": "sunny"}
    parser.feed(assistant("m1", tool_use("toolu_9", "StructuredOutput", answer)))
    events = parser.feed(event("message_stop"))
    assert not any(isinstance(e, ToolCallEvent) for e in events)
    assert Finish("tool_calls") not in events
    assert not parser.done


def test_a_repeated_tool_use_line_is_one_call() -> None:
    parser = ClaudeToolParser()
    line = assistant("m1", tool_use("toolu_1", "mcp__client__f", {}))
    parser.feed(line)
    parser.feed(line)
    calls = [e for e in parser.feed(event("message_stop")) if isinstance(e, ToolCallEvent)]
    assert calls == [ToolCallEvent("toolu_1", "f", "{}")]


def test_a_sub_agents_tool_use_is_not_a_call_of_the_answer() -> None:
    parser = ClaudeToolParser()
    line = assistant("m1", tool_use("toolu_1", "mcp__client__f", {}))
    parser.feed({**line, "parent_tool_use_id": "toolu_0"})
    assert parser.feed(event("message_stop")) == []


def test_an_answer_without_tool_calls_finishes_as_usual() -> None:
    parser = ClaudeToolParser()
    parser.feed(assistant("m1", {"type": "text", "text": "Hi"}))
    parser.feed(event("message_stop"))
    result = {"type": "result", "subtype": "success", "is_error": False, "result": "Hi"}
    assert parser.feed(result)[-1] == Finish("stop")


def test_with_an_mcp_config_only_its_tools_are_allowed_and_safe_mode_is_replaced() -> None:
    argv = build_claude_argv(
        "claude",
        model="sonnet",
        system_prompt_file=Path("/r/s.md"),
        mcp_config=Path("/r/mcp.json"),
        mcp_tools=("mcp__client__a", "mcp__client__b"),
    )
    assert "--tools=" in argv
    assert "--strict-mcp-config" in argv
    assert "--mcp-config=/r/mcp.json" in argv
    assert "--allowedTools=mcp__client__a,mcp__client__b" in argv
    # --safe-mode turns every MCP server off, so settings are not read at all instead.
    assert "--safe-mode" not in argv
    assert "--setting-sources=" in argv
    plain = build_claude_argv("claude", model="sonnet", system_prompt_file=Path("/r/s.md"))
    assert "--safe-mode" in plain
    assert not any(a.startswith(("--mcp-config", "--allowedTools")) for a in plain)


async def test_the_cli_run_is_closed_once_the_answer_ended_with_tool_calls() -> None:
    # Regression: the run was left to the garbage collector, so the CLI outlived the
    # request's MCP endpoint and went on with an error in place of the client's result.
    closed = []

    async def run() -> AsyncGenerator[BackendEvent, None]:
        try:
            yield ToolCallEvent("c1", "f", "{}")
            yield Finish("tool_calls")
            yield TextDelta("the CLI went on")
        finally:
            closed.append(True)

    out = [e async for e in until_tool_calls(run())]
    assert out == [ToolCallEvent("c1", "f", "{}"), Finish("tool_calls")]
    assert closed == [True]
