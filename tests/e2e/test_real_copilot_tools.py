"""Tool calling with the REAL copilot CLI through the server, both runners, over the fake
model API: the model gets exactly the client's tools (the persistent runner's custom
tools, the one-shot runner's MCP endpoint) and no built-in one, its calls end the answer
as OpenAI tool_calls, the follow-up carries the results, and nothing runs on the server.

One server per runner serves the module (a real copilot request costs seconds).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.harness import ProxyServer, wait_until
from tests.e2e.realcli import copilot_cache, start_real_server  # noqa: F401
from tests.e2e.test_real_copilot_security import transient_cli_processes
from tests.e2e.tool_specs import CLOCK, PLACE, WEATHER
from tests.fakemodel.server import FakeModelApi, ModelCall, Reply, ToolCall

pytestmark = pytest.mark.real_cli

MODEL = "claude-sonnet-4.6"


@dataclass
class Stage:
    runner: str
    api: FakeModelApi
    server: ProxyServer
    home: Path

    def model_name(self, name: str) -> str:
        """What the model sees: one-shot copilot names an MCP tool ``<server>-<tool>``."""
        return f"client-{name}" if self.runner == "oneshot" else name

    def turns_since(self, start: int) -> list[ModelCall]:
        return self.api.model_calls()[start:]

    def settled(self) -> bool:
        if transient_cli_processes(self.server):
            return False
        return self.runner != "oneshot" or not self.server.request_dirs()

    def assert_settled(self) -> None:
        assert wait_until(self.settled, 30), (
            transient_cli_processes(self.server),
            self.server.request_dirs(),
        )


@pytest.fixture(scope="module", params=["oneshot", "persistent"])
def stage(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    copilot_cache: Path,  # noqa: F811
) -> Iterator[Stage]:
    runner = str(request.param)
    root = tmp_path_factory.mktemp(f"copilot-tools-{runner}")
    home = root / "home"
    home.mkdir()
    api = FakeModelApi().start()
    server = start_real_server(root, "copilot", runner, api, home, copilot_cache)
    try:
        yield Stage(runner, api, server, home)
    finally:
        server.stop()
        api.stop()


def test_round_trip_tool_call_result_and_final_answer(stage: Stage) -> None:
    weather = stage.model_name("get_weather")
    start = len(stage.api.model_calls())
    stage.api.script(Reply("", (ToolCall(weather, {"city": "Paris"}),), for_tool=weather))
    client = stage.server.client()
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    # The model was offered exactly the client's tool, nothing built in, and asked once:
    # the turn ended at the call (the CLI did not go on to tell the model it failed).
    assert [t.tool_names for t in stage.turns_since(start)] == [[weather]]
    stage.assert_settled()

    call = calls[0]
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"},
    ]
    mark = len(stage.api.model_calls())
    stage.api.script(Reply("Sunny in Paris.", for_tool=weather))
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Sunny in Paris."
    followup = stage.turns_since(mark)[-1]
    assert followup.tool_names == [weather]  # offered again
    prompt = followup.conversation_text
    assert f"[tool result of tool get_weather (id {call.id})]\nsunny, 24 C" in prompt
    assert f"[called tool get_weather (id {call.id})" in prompt
    stage.assert_settled()


def test_parallel_calls_streamed_as_deltas(stage: Stage) -> None:
    weather, clock = stage.model_name("get_weather"), stage.model_name("get_time")
    stage.api.script(
        Reply(
            "Checking both.",
            (ToolCall(weather, {"city": "Oslo"}), ToolCall(clock, {"tz": "CET"})),
            for_tool=weather,
        )
    )
    with stage.server.client().chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather and time in Oslo?"}],
        tools=[WEATHER, CLOCK],
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking both."
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_time", {"tz": "CET"}),
    ]
    assert len({c.id for c in calls}) == 2
    stage.assert_settled()


def test_parallel_tool_calls_false_keeps_the_first(stage: Stage) -> None:
    weather, clock = stage.model_name("get_weather"), stage.model_name("get_time")
    stage.api.script(
        Reply("", (ToolCall(weather, {"city": "Oslo"}), ToolCall(clock, {})), for_tool=weather)
    )
    answer = stage.server.client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather and time?"}],
        tools=[WEATHER, CLOCK],
        parallel_tool_calls=False,
    )
    assert [c.function.name for c in answer.choices[0].message.tool_calls or []] == ["get_weather"]


def test_tool_choice_none_offers_no_tool(stage: Stage) -> None:
    start = len(stage.api.model_calls())
    answer = stage.server.client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Just talk."}],
        tools=[WEATHER],
        tool_choice="none",
    )
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content == stage.api.default_text
    assert [t.tool_names for t in stage.turns_since(start)] == [[]]


def test_tool_choice_named_or_required_answered_with_text_is_502(stage: Stage) -> None:
    start = len(stage.api.model_calls())
    with pytest.raises(openai.APIStatusError) as caught:
        stage.server.client().chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER, CLOCK],
            tool_choice={"type": "function", "function": {"name": "get_time"}},
        )
    assert caught.value.status_code == 502
    assert caught.value.code == "tool_choice_not_followed"
    turn = stage.turns_since(start)[-1]
    assert turn.tool_names == [stage.model_name("get_time")]  # the named tool only
    assert "calling the tool get_time" in turn.system_text

    start = len(stage.api.model_calls())
    with pytest.raises(openai.APIStatusError) as caught:
        stage.server.client().chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER, CLOCK],
            tool_choice="required",
        )
    assert (caught.value.status_code, caught.value.code) == (502, "tool_choice_not_followed")
    turn = stage.turns_since(start)[-1]
    assert sorted(turn.tool_names) == sorted(map(stage.model_name, ("get_weather", "get_time")))
    assert "calling one or more of your tools" in turn.system_text
    stage.assert_settled()


def test_a_model_asking_for_shell_or_write_gets_no_such_tool_and_writes_nothing(
    stage: Stage, tmp_path: Path
) -> None:
    """The model calls built-in tools it was never offered (as a model that knows
    copilot's tools may); the CLI has none of them, nothing is written, and the client
    gets no call it did not offer."""
    canary = tmp_path / "canary.txt"
    weather = stage.model_name("get_weather")
    start = len(stage.api.model_calls())
    stage.api.script(
        Reply(
            "",
            (
                ToolCall("bash", {"command": f"touch {canary}", "description": "x"}),
                ToolCall("create", {"path": str(canary), "file_text": "x"}),
            ),
            for_tool=weather,
        )
    )
    ask = f"Use your shell to run `touch {canary}`, then write {canary} with your write tool."
    answer = stage.server.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": ask}], tools=[WEATHER]
    )
    turns = stage.turns_since(start)
    assert turns and all(t.tool_names == [weather] for t in turns)
    # The CLI told the model those tools do not exist, and the model then answered.
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content == stage.api.default_text
    assert not canary.exists()
    stage.assert_settled()


def test_tools_with_response_format_give_the_calls_then_the_checked_answer(stage: Stage) -> None:
    """Regression: with response_format too, a turn that called tools was checked as an
    empty answer (502, the calls lost) or read on until the CLI timed out."""
    weather = stage.model_name("get_weather")
    stage.api.script(Reply("", (ToolCall(weather, {"city": "Paris"}),), for_tool=weather))
    client = stage.server.client()
    messages: list[Any] = [{"role": "user", "content": "The sky over Paris, as a place?"}]
    kwargs: dict[str, Any] = {"model": MODEL, "tools": [WEATHER], "response_format": PLACE}
    first = client.chat.completions.create(messages=messages, timeout=60, **kwargs)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.function.name for c in choice.message.tool_calls or []] == ["get_weather"]
    stage.assert_settled()

    call = (choice.message.tool_calls or [])[0]
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"},
    ]
    stage.api.script(Reply('{"city": "Paris", "sky": "sunny"}', for_tool=weather))
    second = client.chat.completions.create(messages=messages, timeout=60, **kwargs)
    assert second.choices[0].finish_reason == "stop"
    assert json.loads(second.choices[0].message.content or "") == {
        "city": "Paris",
        "sky": "sunny",
    }
    stage.assert_settled()
