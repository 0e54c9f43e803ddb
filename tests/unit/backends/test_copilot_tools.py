"""The client's tools for copilot: how they are declared (session.create custom tools,
one-shot argv), how the model's calls are read from ``assistant.message``, and that a
client's tool is never run or approved by the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from copilot_cli_proxy.backends.base import Finish, TextDelta, ToolCallEvent, Usage
from copilot_cli_proxy.backends.copilot_cli import (
    DENY_ALL_TOOLS,
    NO_TOOL,
    build_copilot_argv,
    mcp_permissions,
)
from copilot_cli_proxy.backends.copilot_rpc import session_create_params
from copilot_cli_proxy.backends.copilot_tools import (
    NOT_RUN,
    CopilotToolParser,
    custom_tools,
    mcp_tool_name,
    tool_requests,
)
from copilot_cli_proxy.core.request import ToolSpec
from tests.unit.backends.test_copilot_headless import session_event_replies

WEATHER = ToolSpec(
    "get_weather",
    "The weather.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
BARE = ToolSpec("bash")  # a client's tool named like a copilot built-in


def test_custom_tools_carry_the_schema_and_override_a_built_in_of_the_same_name() -> None:
    """Regression (real CLI 1.0.102): a custom tool named like a built-in one failed the
    whole turn ("conflicts with a built-in tool of the same name")."""
    declared = custom_tools((WEATHER, BARE))
    assert declared == [
        {
            "name": "get_weather",
            "description": "The weather.",
            "parameters": dict(WEATHER.parameters),
            "overridesBuiltInTool": True,
        },
        {
            "name": "bash",
            "description": "",
            "parameters": {"type": "object", "properties": {}},
            "overridesBuiltInTool": True,
        },
    ]


def test_session_params_make_the_clients_tools_the_only_available_ones(tmp_path: Path) -> None:
    params = session_create_params(
        model="m",
        workdir=tmp_path,
        system="",
        allowed_tools=(),
        reasoning_effort=None,
        tools=(WEATHER, BARE),
    )
    assert params["availableTools"] == ["get_weather", "bash"]
    assert [t["name"] for t in params["tools"]] == ["get_weather", "bash"]
    without = session_create_params(
        model="m", workdir=tmp_path, system="", allowed_tools=(), reasoning_effort=None
    )
    assert without["availableTools"] == [] and "tools" not in without


def test_oneshot_argv_names_the_endpoint_file_and_only_its_tools(tmp_path: Path) -> None:
    config = tmp_path / "mcp-config.json"
    names = (mcp_tool_name("get_weather"), mcp_tool_name("bash"))
    argv = build_copilot_argv(
        "/x/copilot",
        prompt="hi",
        model="m",
        usage_file=tmp_path / "u.json",
        mcp_config=config,
        mcp_tools=names,
    )
    assert f"--additional-mcp-config=@{config}" in argv
    available = [a for a in argv if a.startswith("--available-tools=")]
    assert available == ["--available-tools=client-get_weather", "--available-tools=client-bash"]
    allowed = [a for a in argv if a.startswith("--allow-tool=")]
    assert allowed == ["--allow-tool=client(get_weather)", "--allow-tool=client(bash)"]
    assert set(DENY_ALL_TOOLS) <= set(argv)  # shell, write and url stay denied
    assert f"--available-tools={NO_TOOL}" not in argv
    assert not any(a.startswith(("--allow-all", "--yolo")) for a in argv)


def test_oneshot_argv_without_tools_has_no_mcp_config(tmp_path: Path) -> None:
    argv = build_copilot_argv("/x/copilot", prompt="hi", model="m", usage_file=tmp_path / "u")
    assert not any(a.startswith("--additional-mcp-config") for a in argv)
    assert [a for a in argv if a.startswith("--allow-tool")] == []
    assert f"--available-tools={NO_TOOL}" in argv


def test_mcp_permissions_name_the_server_and_the_tool() -> None:
    assert mcp_permissions(("client-get_weather", "client-a-b")) == (
        "client(get_weather)",
        "client(a-b)",
    )


# What the real CLI 1.0.102 sent (trimmed): headless custom tools, and one-shot MCP tools.
HEADLESS_MESSAGE = {
    "messageId": "m1",
    "content": "Checking.",
    "toolRequests": [
        {"toolCallId": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}},
        {"toolCallId": "toolu_2", "name": "get_time", "arguments": {"tz": "CET"}},
    ],
}
ONESHOT_REQUEST = {
    "toolCallId": "toolu_3",
    "name": "client-get_weather",
    "arguments": {"city": "Oslo"},
    "type": "function",
    "mcpServerName": "client",
    "mcpToolName": "get_weather",
}


def test_tool_requests_of_a_headless_message_in_order() -> None:
    assert tool_requests(HEADLESS_MESSAGE) == [
        ToolCallEvent("toolu_1", "get_weather", '{"city": "Paris"}'),
        ToolCallEvent("toolu_2", "get_time", '{"tz": "CET"}'),
    ]


def test_tool_requests_of_the_oneshot_endpoint_take_the_clients_name() -> None:
    assert tool_requests({"toolRequests": [ONESHOT_REQUEST]}) == [
        ToolCallEvent("toolu_3", "get_weather", '{"city": "Oslo"}')
    ]


def test_tool_requests_skip_malformed_entries() -> None:
    data: dict[str, Any] = {
        "toolRequests": [
            "x",
            {"name": "a"},
            {"toolCallId": "", "name": "a"},
            {"toolCallId": "c", "name": 3},
            {"toolCallId": "d", "name": "ok", "arguments": None},
        ]
    }
    assert tool_requests(data) == [ToolCallEvent("d", "ok", "{}")]
    assert tool_requests({"toolRequests": None}) == []


def _event(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "data": data}


def test_parser_ends_the_answer_at_the_message_that_calls_tools() -> None:
    parser = CopilotToolParser("login", ("get_weather", "get_time"))
    events = parser.feed(
        _event("assistant.message_delta", messageId="m1", deltaContent="Checking.")
    )
    assert events == [TextDelta("Checking.")]
    parser.feed(_event("assistant.usage", inputTokens=45, outputTokens=2))
    events = parser.feed(_event("assistant.message", **HEADLESS_MESSAGE))
    assert events == [
        ToolCallEvent("toolu_1", "get_weather", '{"city": "Paris"}'),
        ToolCallEvent("toolu_2", "get_time", '{"tz": "CET"}'),
        Usage(prompt_tokens=45, completion_tokens=2),
        Finish("tool_calls"),
    ]
    assert parser.calls_done
    # Whatever the CLI does next (the failed tool, a second model turn) is not read.
    assert parser.feed(_event("assistant.message_delta", messageId="m2", deltaContent="x")) == []


def test_parser_passes_on_no_call_of_a_tool_the_client_did_not_offer() -> None:
    parser = CopilotToolParser("login", ("get_weather",))
    bash = {"toolCallId": "t", "name": "bash", "arguments": {"command": "rm -rf /"}}
    events = parser.feed(
        _event("assistant.message", messageId="m", content="", toolRequests=[bash])
    )
    assert events == [] and not parser.calls_done
    events = parser.feed(_event("assistant.message", messageId="n", content="Done."))
    assert events == [TextDelta("Done.")]


def test_parser_without_calls_answers_as_usual() -> None:
    parser = CopilotToolParser("login", ("get_weather",))
    parser.feed(_event("assistant.message", messageId="m", content="Hi.", toolRequests=[]))
    assert not parser.calls_done
    assert parser.feed(_event("session.idle")) == [] and parser.idle


async def _answers(event: dict[str, Any], allowed: tuple[str, ...]) -> list[tuple[str, Any]]:
    sent, _ = await session_event_replies(event, allowed)
    return sent


async def test_a_clients_tool_is_never_approved_even_with_allowed_tools() -> None:
    asked = {
        "type": "permission.requested",
        "data": {
            "requestId": "r1",
            "permissionRequest": {"kind": "custom-tool", "toolName": "get_weather"},
        },
    }
    assert await _answers(asked, ("shell",)) == []
    assert await _answers(asked, ()) == []
    shell = {**asked, "data": {"requestId": "r2", "permissionRequest": {"kind": "shell"}}}
    approved = await _answers(shell, ("shell",))
    assert [params["result"] for _, params in approved] == [{"kind": "approve-once"}]


async def test_a_tool_the_cli_asks_the_client_to_run_gets_an_error_result() -> None:
    asked = {
        "type": "external_tool.requested",
        "data": {"requestId": "r9", "toolCallId": "t", "toolName": "get_weather"},
    }
    sent = await _answers(asked, ())
    assert sent == [
        (
            "session.tools.handlePendingToolCall",
            {"sessionId": "s1", "requestId": "r9", "error": NOT_RUN},
        )
    ]
    assert json.dumps(sent)  # plain JSON on the wire


FAKE_COPILOT = Path(__file__).resolve().parents[2] / "fakes" / "copilot"
TRANSCRIPT = Path(__file__).resolve().parents[2] / "fakes" / "copilot-tools-transcript.json"


def test_the_fakes_tool_contract_is_the_real_transcripts() -> None:
    """The real CLI's answers the fake follows: a custom tool named like a built-in fails
    without overridesBuiltInTool; with it, the calls come in assistant.message."""
    exchanges = json.loads(TRANSCRIPT.read_text())["exchanges"]
    refused, taken = exchanges
    assert not refused["overridesBuiltInTool"]
    assert 'External tool "bash" conflicts' in refused["events"][0]["data"]["message"]
    assert taken["session.create"]["tools"] == custom_tools(
        (WEATHER, ToolSpec("bash", "A client's tool named like a built-in."))
    )
    message = next(e["data"] for e in taken["events"] if e["type"] == "assistant.message")
    assert [c.name for c in tool_requests(message)] == ["get_weather", "bash"]
    assert taken["model_tools"] == [["get_weather", "bash"]]


async def test_persistent_runner_over_the_fake_ends_the_answer_at_the_calls(
    tmp_path: Path,
) -> None:
    from copilot_cli_proxy.backends.base import RunRecord
    from copilot_cli_proxy.backends.copilot_headless import CopilotHeadlessBackend
    from copilot_cli_proxy.core.request import ChatRequest, Message
    from copilot_cli_proxy.settings import Settings

    backend = CopilotHeadlessBackend(
        Settings(copilot_cli_path=str(FAKE_COPILOT), temp_dir_base=str(tmp_path / "requests"))
    )
    prompt = 'Weather?\nFAKE_REPLY=Checking.\nFAKE_TOOL_CALL=get_weather {"city": "Oslo"}'
    request = ChatRequest(
        model="gpt-5-mini", messages=(Message("user", prompt),), tools=(WEATHER, BARE)
    )
    events: list[Any] = []
    async with anyio.create_task_group() as tg:
        await backend.start(tg)
        try:
            with anyio.fail_after(60):
                async for event in backend.stream(request, RunRecord()):
                    events.append(event)
        finally:
            await backend.stop()
            tg.cancel_scope.cancel()
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert events[-1] == Finish("tool_calls")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Checking."
