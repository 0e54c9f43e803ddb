"""``response_format`` through the server over the fake CLIs, both kinds and both runners,
driven by the official openai SDK (plain, ``.parse`` with a Pydantic model) and LangChain.

The fakes answer what the prompt says (``FAKE_REPLY=``); the copilot fake gives
``FAKE_REPAIR_REPLY=`` on a later turn of the conversation, so the repair turn is
visible. The claude fake, like the real CLI with ``--json-schema``, reports a JSON object
answer as the StructuredOutput tool's input (``result.structured_output``).
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.e2e.harness import ProxyServer, ask
from tests.e2e.targets import ServerPool

STAGES = [
    ("copilot", "oneshot"),
    ("copilot", "persistent"),
    ("claude", "oneshot"),
    ("claude", "persistent"),
]
PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
PERSON_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True},
}
ADA = '{"name": "Ada", "age": 36}'


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture(params=STAGES, ids=[f"{s}-{r}" for s, r in STAGES])
def stage(request: pytest.FixtureRequest, fake_servers: ServerPool) -> tuple[str, ProxyServer]:
    service, runner = request.param
    return service, fake_servers.get(f"{service}-{runner}").server


def model_of(stage: tuple[str, ProxyServer]) -> str:
    return "gpt-5-mini" if stage[0] == "copilot" else "sonnet"


def test_json_schema_answer_is_the_json(stage: tuple[str, ProxyServer]) -> None:
    _, server = stage
    reply = server.client().chat.completions.create(
        model=model_of(stage),
        messages=ask(f"Who?\nFAKE_REPLY={ADA}"),
        response_format=PERSON_FORMAT,  # type: ignore[arg-type]
    )
    assert json.loads(reply.choices[0].message.content or "") == {"name": "Ada", "age": 36}
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_json_schema_streamed_comes_whole_once_valid(stage: tuple[str, ProxyServer]) -> None:
    _, server = stage
    chunks = list(
        server.client().chat.completions.create(
            model=model_of(stage),
            messages=ask(f"Who?\nFAKE_REPLY={ADA}"),
            response_format=PERSON_FORMAT,  # type: ignore[arg-type]
            stream=True,
        )
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    # Held back until checked, then sent as one piece (the fakes stream in many deltas).
    assert len(pieces) == 1
    assert json.loads(pieces[0]) == {"name": "Ada", "age": 36}
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_json_object_answer(stage: tuple[str, ProxyServer]) -> None:
    _, server = stage
    reply = server.client().chat.completions.create(
        model=model_of(stage),
        messages=ask('JSON please\nFAKE_REPLY={"ok": true, "items": [1, 2]}'),
        response_format={"type": "json_object"},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"ok": True, "items": [1, 2]}


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_that_never_validates_is_a_502(
    stage: tuple[str, ProxyServer], stream: bool
) -> None:
    _, server = stage
    with pytest.raises(openai.APIStatusError) as caught:
        response = server.client().chat.completions.create(
            model=model_of(stage),
            messages=ask(
                'Who?\nFAKE_REPLY={"name": "Ada", "age": "old"}\n'
                'FAKE_REPAIR_REPLY={"name": "Ada", "age": "old"}'
            ),
            response_format=PERSON_FORMAT,  # type: ignore[arg-type]
            stream=stream,
        )
        if stream:
            list(response)  # type: ignore[call-overload]
    assert caught.value.status_code == 502
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "invalid_structured_output"
    assert "at age" in error["message"] and "'old' is not of type 'integer'" in error["message"]


def test_a_non_json_answer_is_a_502_never_the_text(stage: tuple[str, ProxyServer]) -> None:
    _, server = stage
    with pytest.raises(openai.APIStatusError) as caught:
        server.client().chat.completions.create(
            model=model_of(stage),
            messages=ask("Who?\nFAKE_REPLY=Ada, 36 years old"),
            response_format={"type": "json_object"},
        )
    assert caught.value.status_code == 502
    assert "not JSON" in str(caught.value.body)


def test_copilot_repairs_once(stage: tuple[str, ProxyServer]) -> None:
    service, server = stage
    if service != "copilot":
        pytest.skip("claude's CLI retries itself (--json-schema): no repair turn of ours")
    reply = server.client().chat.completions.create(
        model=model_of(stage),
        messages=ask(f'Who?\nFAKE_REPLY={{"name": "Ada"}}\nFAKE_REPAIR_REPLY={ADA}'),
        response_format=PERSON_FORMAT,  # type: ignore[arg-type]
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in reply if c.choices)
    assert json.loads(text) == {"name": "Ada", "age": 36}


def test_copilot_repair_that_fails_again_is_a_502(stage: tuple[str, ProxyServer]) -> None:
    service, server = stage
    if service != "copilot":
        pytest.skip("claude's CLI retries itself (--json-schema): no repair turn of ours")
    with pytest.raises(openai.APIStatusError) as caught:
        server.client().chat.completions.create(
            model=model_of(stage),
            messages=ask("Who?\nFAKE_REPLY=[1]\nFAKE_REPAIR_REPLY=still not an object"),
            response_format={"type": "json_object"},
        )
    assert caught.value.status_code == 502
    # The error is the repair turn's: the second answer was checked, not the first.
    assert "still not an object" in str(caught.value.body)


def test_openai_parse_with_a_pydantic_model(stage: tuple[str, ProxyServer]) -> None:
    _, server = stage
    completion = server.client().chat.completions.parse(
        model=model_of(stage),
        messages=ask(f"Who?\nFAKE_REPLY={ADA}"),
        response_format=Person,
    )
    assert completion.choices[0].message.parsed == Person(name="Ada", age=36)


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_langchain_with_structured_output(stage: tuple[str, ProxyServer], method: str) -> None:
    from langchain_openai import ChatOpenAI

    _, server = stage
    llm = ChatOpenAI(
        model=model_of(stage), base_url=server.base_url, api_key="unused", max_retries=0
    )
    structured = llm.with_structured_output(Person, method=method)  # type: ignore[arg-type]
    assert structured.invoke(f"Who?\nFAKE_REPLY={ADA}") == Person(name="Ada", age=36)


def test_a_schema_that_is_not_json_schema_is_a_400(stage: tuple[str, ProxyServer]) -> None:
    _, server = stage
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().chat.completions.create(
            model=model_of(stage),
            messages=ask("Who?"),
            response_format={  # type: ignore[arg-type]
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "no-such-type"}},
            },
        )
    assert "not a valid JSON Schema" in str(caught.value.body)
