"""``response_format`` with the real CLIs over the fake model API, both runners.

claude: the schema goes to the CLI as ``--json-schema``; the CLI offers the model a
StructuredOutput tool with it, and the server answers with the tool's input as the CLI
reports it. copilot: the schema reaches the model as system text, the answer is checked,
and an answer that fails gets one repair turn in the same conversation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ask
from tests.e2e.realclaude import main_calls, stage
from tests.e2e.realcli import copilot_cache, start_real_server  # noqa: F401
from tests.fakemodel.server import FakeModelApi, Reply, ToolCall

pytestmark = pytest.mark.real_cli

RUNNERS = ("oneshot", "persistent")
PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
PERSON_FORMAT: Any = {
    "type": "json_schema",
    "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True},
}


def offered_schema(body: dict[str, Any], name: str) -> Any:
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name") == name:
            return tool.get("input_schema")
    return None


@pytest.mark.parametrize("runner", RUNNERS)
def test_claude_answers_with_the_structured_output_tool(tmp_path: Path, runner: str) -> None:
    with stage(tmp_path, runner) as s:
        # Text around the tool call is not the answer: only the tool's input is.
        s.api.script(
            Reply(
                text="Let me fill that in.",
                tool_calls=(ToolCall("StructuredOutput", {"name": "Ada", "age": 36}),),
                for_tool="StructuredOutput",
            )
        )
        chunks = list(
            s.server.client().chat.completions.create(
                model="sonnet",
                messages=ask("Who wrote the first program?"),
                response_format=PERSON_FORMAT,
                stream=True,
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert json.loads(text) == {"name": "Ada", "age": 36}
        calls = [c for c in main_calls(s.api.calls) if "StructuredOutput" in c.tool_names]
        assert calls, "the model was never offered the StructuredOutput tool"
        assert offered_schema(calls[0].body, "StructuredOutput") == PERSON_SCHEMA
        s.assert_settled()


@pytest.mark.parametrize("runner", RUNNERS)
def test_copilot_states_the_schema_and_repairs_once(
    tmp_path: Path,
    runner: str,
    copilot_cache: Path,  # noqa: F811
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    api = FakeModelApi().start()
    try:
        server = start_real_server(tmp_path, "copilot", runner, api, home, copilot_cache)
        try:
            api.script('{"name": "Ada"}', '```json\n{"name": "Ada", "age": 36}\n```')
            reply = server.client().chat.completions.create(
                model="claude-sonnet-4.6",
                messages=[
                    {"role": "system", "content": "Be precise."},
                    *ask("Who wrote the first program?"),
                ],
                response_format=PERSON_FORMAT,
            )
            assert json.loads(reply.choices[0].message.content or "") == {
                "name": "Ada",
                "age": 36,
            }
            calls = [c for c in api.model_calls() if "first program" in c.conversation_text]
            assert len(calls) == 2, [c.conversation_text[-200:] for c in calls]
            first, repair = calls
            schema = json.dumps(PERSON_SCHEMA, sort_keys=True)
            for call in calls:
                assert "Be precise." in call.system_text
                assert "validates against this JSON Schema" in call.system_text
                assert schema in call.system_text
            assert "'age' is a required property" in repair.conversation_text
            assert '{"name": "Ada"}' in repair.conversation_text  # the answer it repairs
            assert "'age' is a required property" not in first.conversation_text
        finally:
            server.stop()
    finally:
        api.stop()
