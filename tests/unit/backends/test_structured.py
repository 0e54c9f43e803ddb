"""Structured output: the answer check, fence stripping, and the repair-once rule."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

import anyio
import pytest

from copilot_cli_proxy.backends.structured import (
    check_answer,
    check_schema,
    format_instruction,
    strip_fence,
    structured_answer,
    with_instruction,
)
from copilot_cli_proxy.core.request import ResponseFormat
from copilot_cli_proxy.core.types import BackendEvent, Finish, TextDelta, ToolCallEvent, Usage
from copilot_cli_proxy.errors import ProxyError

PERSON = ResponseFormat(
    "json_schema",
    {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    },
    "person",
    True,
)
OBJECT = ResponseFormat("json_object")


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ('```json\n{"a": 1}\n```', '{"a": 1}'),
        ('```\n{"a": 1}\n```\n', '{"a": 1}'),
        ("  ```JSON\n[1,\n2]\n```  ", "[1,\n2]"),
        ('{"a": "```"}', '{"a": "```"}'),
        ('  {"a": 1}\n', '{"a": 1}'),
    ],
)
def test_strip_fence(text: str, body: str) -> None:
    assert strip_fence(text) == body


def test_a_fenced_valid_answer_is_returned_without_its_fence() -> None:
    answer, error = check_answer('```json\n{"name": "Ada", "age": 36}\n```', PERSON)
    assert error is None
    assert json.loads(answer) == {"name": "Ada", "age": 36}
    assert "```" not in answer


@pytest.mark.parametrize(
    ("text", "fmt", "why"),
    [
        ("Sure! Here it is.", PERSON, "not JSON"),
        ("", OBJECT, "empty answer"),
        ('{"name": "Ada"}', PERSON, "'age' is a required property"),
        ('{"name": "Ada", "age": "old"}', PERSON, "at age"),
        ('{"name": "Ada", "age": 3, "x": 1}', PERSON, "Additional properties"),
        ("[1, 2]", OBJECT, "not an object"),
        ('"text"', OBJECT, "not an object"),
    ],
)
def test_invalid_answers_say_why(text: str, fmt: ResponseFormat, why: str) -> None:
    answer, error = check_answer(text, fmt)
    assert answer == ""
    assert error is not None and why in error


def test_json_object_accepts_any_object() -> None:
    assert check_answer('{"anything": [1, {"x": null}]}', OBJECT) == (
        '{"anything": [1, {"x": null}]}',
        None,
    )


def test_a_schema_jsonschema_cannot_use_is_a_400() -> None:
    with pytest.raises(ProxyError) as caught:
        check_schema(ResponseFormat("json_schema", {"type": "no-such-type"}))
    assert caught.value.status == 400
    assert caught.value.param == "response_format.json_schema.schema"


def test_the_instruction_carries_the_schema_and_keeps_the_system_text() -> None:
    text = with_instruction("Be terse.", PERSON)
    assert text.startswith("Be terse.\n\n")
    assert '"required": ["name", "age"]' in text
    assert '"person"' in text
    assert "only a JSON object" in format_instruction(OBJECT)
    assert with_instruction("Be terse.", None) == "Be terse."


class Turns:
    """A model that gives the scripted answers in order, one per turn."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.notes: list[tuple[str | None, str]] = []

    def __call__(self, note: str | None, failed: str) -> AsyncGenerator[BackendEvent, None]:
        self.notes.append((note, failed))
        answer = self.answers.pop(0)

        async def turn() -> AsyncGenerator[BackendEvent, None]:
            for piece in (answer[: len(answer) // 2], answer[len(answer) // 2 :]):
                yield TextDelta(piece)
            yield Usage(prompt_tokens=10, completion_tokens=2)
            yield Finish("stop")

        return turn()


async def events_of(fmt: ResponseFormat, turns: Turns, *, repair: bool) -> list[BackendEvent]:
    return [e async for e in structured_answer(fmt, turns, repair=repair)]


async def test_a_valid_first_answer_is_one_delta_then_usage_and_finish() -> None:
    turns = Turns('{"name": "Ada", "age": 36}')
    events = await events_of(PERSON, turns, repair=True)
    assert events == [
        TextDelta('{"name": "Ada", "age": 36}'),
        Usage(prompt_tokens=10, completion_tokens=2),
        Finish("stop"),
    ]
    assert turns.notes == [(None, "")]


async def test_an_invalid_answer_gets_one_repair_turn_with_the_error() -> None:
    turns = Turns('{"name": "Ada"}', '```json\n{"name": "Ada", "age": 36}\n```')
    events = await events_of(PERSON, turns, repair=True)
    assert events[0] == TextDelta('{"name": "Ada", "age": 36}')
    # Usage covers both turns.
    assert events[1] == Usage(prompt_tokens=20, completion_tokens=4, cached_prompt_tokens=None)
    note, failed = turns.notes[1]
    assert note is not None and "'age' is a required property" in note
    assert failed == '{"name": "Ada"}'


async def test_a_second_invalid_answer_is_invalid_structured_output() -> None:
    turns = Turns("not json", '{"name": 1, "age": 2}')
    with pytest.raises(ProxyError) as caught:
        await events_of(PERSON, turns, repair=True)
    assert caught.value.code == "invalid_structured_output"
    assert caught.value.status == 502
    assert "at name" in caught.value.message
    assert len(turns.notes) == 2


async def test_without_repair_an_invalid_answer_fails_at_once() -> None:
    turns = Turns("[1]", '{"a": 1}')
    with pytest.raises(ProxyError) as caught:
        await events_of(OBJECT, turns, repair=False)
    assert caught.value.code == "invalid_structured_output"
    assert len(turns.notes) == 1


async def test_tool_calls_instead_of_an_answer_go_out_at_once_and_the_run_is_not_read_on() -> None:
    """Regression: with tools and response_format, a turn that called tools was read on to
    its end (the CLI waiting on a tool result until the request timed out) and then
    checked as an empty answer; the calls were lost."""
    closed_early: list[bool] = []

    def turn_with_calls(note: str | None, failed: str) -> AsyncGenerator[BackendEvent, None]:
        async def turn() -> AsyncGenerator[BackendEvent, None]:
            try:
                yield ToolCallEvent("call_1", "get_weather", '{"city": "Paris"}')
                yield ToolCallEvent("call_2", "get_time", "{}")
                yield Usage(prompt_tokens=7, completion_tokens=3)
                yield Finish("tool_calls")
                await anyio.sleep_forever()  # the CLI, holding the call unanswered
                yield TextDelta("never")
            except GeneratorExit:
                closed_early.append(True)
                raise

        return turn()

    with anyio.fail_after(10):
        events = await events_of(PERSON, turn_with_calls, repair=True)
    assert events == [
        ToolCallEvent("call_1", "get_weather", '{"city": "Paris"}'),
        ToolCallEvent("call_2", "get_time", "{}"),
        Usage(prompt_tokens=7, completion_tokens=3),
        Finish("tool_calls"),
    ]
    assert closed_early == [True]
