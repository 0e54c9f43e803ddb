"""claude with ``--json-schema``: the flag, the warm-pool key, and where the answer is
taken from (``result.structured_output``, never the text around the tool call)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot_cli_proxy.backends.claude_cli import (
    MAX_SCHEMA_ARG_BYTES,
    build_claude_argv,
    check_schema_arg,
    json_schema_arg,
)
from copilot_cli_proxy.backends.claude_output import ClaudeOutputParser
from copilot_cli_proxy.backends.claude_warm import WarmKey
from copilot_cli_proxy.core.request import ChatRequest, Message, ResponseFormat
from copilot_cli_proxy.core.types import Finish, TextDelta
from copilot_cli_proxy.errors import ProxyError
from tests.unit.backends.test_claude_cli import assistant, drive, result, text_block

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def request_with(fmt: ResponseFormat | None) -> ChatRequest:
    return ChatRequest("sonnet", (Message("user", "hi"),), response_format=fmt)


def test_json_schema_is_one_argv_string() -> None:
    schema = json_schema_arg(request_with(ResponseFormat("json_schema", SCHEMA)))
    assert schema is not None and json.loads(schema) == SCHEMA
    argv = build_claude_argv("claude", model="m", system_prompt_file=Path("s"), json_schema=schema)
    assert f"--json-schema={schema}" in argv
    assert not any(
        a.startswith("--json-schema")
        for a in build_claude_argv("claude", model="m", system_prompt_file=Path("s"))
    )


def test_json_object_is_any_object_and_no_format_is_no_flag() -> None:
    assert json_schema_arg(request_with(ResponseFormat("json_object"))) == '{"type":"object"}'
    assert json_schema_arg(request_with(None)) is None


def test_the_warm_key_tells_schemas_apart() -> None:
    one = json_schema_arg(request_with(ResponseFormat("json_schema", SCHEMA)))
    other = json_schema_arg(request_with(ResponseFormat("json_object")))
    assert WarmKey("m", "", None, one) != WarmKey("m", "", None, other)
    assert WarmKey("m", "", None, one) != WarmKey("m", "", None)


def test_a_schema_too_big_for_argv_is_a_400() -> None:
    big = {"type": "object", "description": "x" * MAX_SCHEMA_ARG_BYTES}
    with pytest.raises(ProxyError) as caught:
        check_schema_arg(request_with(ResponseFormat("json_schema", big)))
    assert caught.value.status == 400


def test_the_answer_is_the_structured_output_not_the_text_around_it() -> None:
    events = drive(
        [
            assistant("m1", text_block("Let me fill that in.")),
            result('{"n":1}', stop_reason="tool_use", structured_output={"n": 1}),
        ],
        parser=ClaudeOutputParser(structured=True),
    )
    assert [e.text for e in events if isinstance(e, TextDelta)] == ['{"n": 1}']
    assert events[-1] == Finish("stop")


def test_without_structured_output_the_result_text_is_the_answer_to_check() -> None:
    events = drive(
        [assistant("m1", text_block("no tool")), result("no tool")],
        parser=ClaudeOutputParser(structured=True),
    )
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["no tool"]
