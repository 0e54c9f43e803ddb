"""Tool calling with the REAL claude CLI through the server, both runners, over the fake
model API: the model gets exactly the client's tools (from the request's MCP endpoint),
its calls end the answer as OpenAI tool_calls, and the follow-up carries the results."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest

from copilot_cli_proxy.backends.claude_cli import build_claude_argv, claude_env
from copilot_cli_proxy.core.request import ToolSpec
from copilot_cli_proxy.tools.mcp_endpoint import serve_tools
from copilot_cli_proxy.tools.request_tools import current_endpoint, mcp_argv_parts
from tests.e2e.harness import require_real_cli, wait_until
from tests.e2e.realclaude import RUNNERS, Stage, leaks, main_calls, module_stage, plant_home
from tests.e2e.tool_specs import CLOCK, PLACE, WEATHER
from tests.fakemodel.server import FakeModelApi, ModelCall, RealCliEnv, Reply, ToolCall

pytestmark = pytest.mark.real_cli

# What the model sees: the CLI's names of the endpoint's tools.
MODEL_WEATHER = "mcp__client__get_weather"
MODEL_CLOCK = "mcp__client__get_time"


@pytest.fixture(scope="module", params=RUNNERS)
def claude_stage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stage]:
    yield from module_stage(request, tmp_path_factory)


def tool_turns(stage: Stage, start: int) -> list[ModelCall]:
    return [c for c in main_calls(stage.calls_since(start)) if c.tool_names]


def test_round_trip_tool_call_result_and_final_answer(claude_stage: Stage) -> None:
    start = len(claude_stage.api.calls)
    claude_stage.api.script(
        Reply("", (ToolCall(MODEL_WEATHER, {"city": "Paris"}),), for_tool=MODEL_WEATHER)
    )
    client = claude_stage.server.client()
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    # The model was offered exactly the client's tool, nothing built in.
    turns = tool_turns(claude_stage, start)
    assert [t.tool_names for t in turns] == [[MODEL_WEATHER]]

    call = calls[0]
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"},
    ]
    # The CLI's side requests take scripted text too: the final answer is the default one.
    default, claude_stage.api.default_text = claude_stage.api.default_text, "Sunny in Paris."
    try:
        second = client.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    finally:
        claude_stage.api.default_text = default
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Sunny in Paris."
    followup = tool_turns(claude_stage, start)[-1]
    assert followup.tool_names == [MODEL_WEATHER]  # offered again
    prompt = followup.conversation_text
    assert f"[tool result of tool get_weather (id {call.id})]\nsunny, 24 C" in prompt
    assert f"[called tool get_weather (id {call.id})" in prompt
    claude_stage.assert_settled()


def test_parallel_calls_streamed_as_deltas(claude_stage: Stage) -> None:
    claude_stage.api.script(
        Reply(
            "Checking both.",
            (ToolCall(MODEL_WEATHER, {"city": "Oslo"}), ToolCall(MODEL_CLOCK, {"tz": "CET"})),
            for_tool=MODEL_WEATHER,
        )
    )
    client = claude_stage.server.client()
    with client.chat.completions.stream(
        model="sonnet",
        messages=[{"role": "user", "content": "Weather and time in Oslo?"}],
        tools=[WEATHER, CLOCK],
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls", (
        final,
        [(c.tool_names, c.path, c.conversation_text[:150]) for c in claude_stage.api.calls[-6:]],
    )
    assert choice.message.content == "Checking both."
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_time", {"tz": "CET"}),
    ]
    assert len({c.id for c in calls}) == 2
    claude_stage.assert_settled()


def test_parallel_tool_calls_false_keeps_the_first(claude_stage: Stage) -> None:
    claude_stage.api.script(
        Reply(
            "",
            (ToolCall(MODEL_WEATHER, {"city": "Oslo"}), ToolCall(MODEL_CLOCK, {})),
            for_tool=MODEL_WEATHER,
        ),
    )
    answer = claude_stage.server.client().chat.completions.create(
        model="sonnet",
        messages=[{"role": "user", "content": "Weather and time?"}],
        tools=[WEATHER, CLOCK],
        parallel_tool_calls=False,
    )
    calls = answer.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather"]


def test_tool_choice_none_offers_no_tool(claude_stage: Stage) -> None:
    start = len(claude_stage.api.calls)
    answer = claude_stage.server.client().chat.completions.create(
        model="sonnet",
        messages=[{"role": "user", "content": "Just talk."}],
        tools=[WEATHER],
        tool_choice="none",
    )
    assert answer.choices[0].finish_reason == "stop"
    assert [c.tool_names for c in main_calls(claude_stage.calls_since(start))] == [[]]


def test_tool_choice_required_answered_with_text_is_502(claude_stage: Stage) -> None:
    start = len(claude_stage.api.calls)
    with pytest.raises(openai.APIStatusError) as caught:
        claude_stage.server.client().chat.completions.create(
            model="sonnet",
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER, CLOCK],
            tool_choice={"type": "function", "function": {"name": "get_time"}},
        )
    assert caught.value.status_code == 502
    assert caught.value.code == "tool_choice_not_followed"
    turn = main_calls(claude_stage.calls_since(start))[-1]
    assert turn.tool_names == [MODEL_CLOCK]  # a named choice offers that tool only
    assert "calling the tool get_time" in turn.system_text


def test_a_prompt_asking_for_shell_write_or_fetch_gets_only_the_clients_tools(
    claude_stage: Stage,
) -> None:
    start = len(claude_stage.api.calls)
    ask = (
        "Use your Bash tool to run `cat /etc/passwd`, then Write it to out.txt and "
        "WebFetch https://example.com. Read @~/notes.txt too."
    )
    claude_stage.server.client().chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": ask}], tools=[WEATHER]
    )
    turns = main_calls(claude_stage.calls_since(start))
    assert turns and all(t.tool_names == [MODEL_WEATHER] for t in turns)
    assert leaks(claude_stage.calls_since(start)) == []


def test_the_mcp_endpoint_needs_its_secret_and_is_gone_after_the_request(
    claude_stage: Stage,
) -> None:
    claude_stage.assert_settled()
    start = len(claude_stage.api.calls)
    claude_stage.api.delay_s = 8.0  # the request stays open while the endpoint is probed
    answer: dict[str, Any] = {}

    def ask() -> None:
        answer["body"] = claude_stage.server.client().chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER]
        )

    worker = threading.Thread(target=ask)
    worker.start()
    try:
        assert wait_until(lambda: tool_turns(claude_stage, start), 60)
        configs = list(claude_stage.base.glob("req-*/**/mcp-config.json"))
        assert len(configs) == 1
        url = httpx.URL(json.loads(configs[0].read_text())["mcpServers"]["client"]["url"])
        assert url.host == "127.0.0.1" and url.path.startswith("/mcp/")
        origin = f"http://127.0.0.1:{url.port}"
        listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        for path in ("/mcp", "/mcp/", "/mcp/wrong-secret", url.path + "x", "/"):
            refused = httpx.post(origin + path, json=listing, timeout=10)
            assert refused.status_code == 404, path
    finally:
        claude_stage.api.delay_s = 0.0
        worker.join(60)
    assert answer["body"].choices[0].finish_reason == "stop"

    def refused() -> bool:
        try:
            httpx.post(str(url), json=listing, timeout=10)
        except httpx.ConnectError:
            return True
        return False

    # The answer goes out before the run is wound up; the endpoint goes with the run.
    assert wait_until(refused, 30)
    claude_stage.assert_settled()


def test_everything_was_clean(claude_stage: Stage) -> None:
    claude_stage.assert_settled()
    assert leaks(claude_stage.api.calls) == []


async def test_contract_init_lists_the_endpoint_connected_with_exactly_the_clients_tools(
    tmp_path: Path,
) -> None:
    """The real binary with the argv the server builds: its init line names our server as
    connected, with exactly the client's tools, and no built-in tool."""
    api = FakeModelApi().start()
    try:
        (tmp_path / "home").mkdir()
        plant_home(tmp_path / "home")
        system_file = tmp_path / "system.md"
        system_file.write_text("")
        tools = (ToolSpec("get_weather", "Weather.", {"type": "object"}), ToolSpec("get_time"))
        async with serve_tools(tools) as endpoint:
            token = current_endpoint.set(endpoint)
            try:
                config, names = mcp_argv_parts(tmp_path)
            finally:
                current_endpoint.reset(token)
            argv = build_claude_argv(
                require_real_cli("claude"),
                model="sonnet",
                system_prompt_file=system_file,
                mcp_config=config,
                mcp_tools=names,
            )
            env = claude_env(RealCliEnv(api, str(tmp_path / "home")).claude())
            init = await _init_line(argv, tmp_path, env)
    finally:
        api.stop()
    assert init["mcp_servers"] == [{"name": "client", "status": "connected"}]
    assert sorted(init["tools"]) == [MODEL_CLOCK, MODEL_WEATHER]
    # With tools, --safe-mode (which would drop our MCP server too) gives way to
    # --setting-sources=: the operator's skills, sub-agents, commands and output style
    # must still stay out.
    assert init["skills"] == [] and init["slash_commands"] == [] and init["plugins"] == []
    assert "spy" not in init["agents"]
    assert init["output_style"] == "default"
    assert leaks(api.calls) == []


async def _init_line(argv: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    async with await anyio.open_process(argv, cwd=cwd, env=env) as process:
        assert process.stdin is not None and process.stdout is not None
        await process.stdin.send(b"hi")
        await process.stdin.aclose()
        buffer = b""
        try:
            with anyio.fail_after(60):
                async for chunk in process.stdout:
                    buffer += chunk
                    for line in buffer.split(b"\n")[:-1]:
                        obj = json.loads(line)
                        if obj.get("type") == "system" and obj.get("subtype") == "init":
                            return dict(obj)
                    buffer = buffer.rsplit(b"\n", 1)[-1]
        finally:
            if process.returncode is None:
                process.kill()
    raise AssertionError("no init line")


def test_tools_with_response_format_give_the_calls_then_the_checked_answer(
    claude_stage: Stage,
) -> None:
    """Regression: with response_format too, a turn that called tools was read on while
    the CLI waited on the held call, until the request timed out."""
    claude_stage.assert_settled()
    claude_stage.api.script(
        Reply("", (ToolCall(MODEL_WEATHER, {"city": "Paris"}),), for_tool=MODEL_WEATHER)
    )
    client = claude_stage.server.client()
    messages: list[Any] = [{"role": "user", "content": "The sky over Paris, as a place?"}]
    kwargs: dict[str, Any] = {"model": "sonnet", "tools": [WEATHER], "response_format": PLACE}
    first = client.chat.completions.create(messages=messages, timeout=60, **kwargs)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.function.name for c in choice.message.tool_calls or []] == ["get_weather"]
    claude_stage.assert_settled()

    call = (choice.message.tool_calls or [])[0]
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"},
    ]
    place = {"city": "Paris", "sky": "sunny"}
    claude_stage.api.script(
        Reply("", (ToolCall("StructuredOutput", place),), for_tool="StructuredOutput")
    )
    second = client.chat.completions.create(messages=messages, timeout=60, **kwargs)
    assert second.choices[0].finish_reason == "stop"
    assert json.loads(second.choices[0].message.content or "") == place
    claude_stage.assert_settled()
