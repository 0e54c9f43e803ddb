"""Client libraries' tool calling and structured output through the server, over the REAL
CLIs over the fake model API: what a program written against the OpenAI API does.

- the OpenAI SDK's ``chat.completions.parse(response_format=PydanticModel)``;
- LangChain's ``bind_tools`` with an agent loop (call, tool message, final answer) and
  ``with_structured_output`` by json_schema, function_calling and json_mode;
- the Vercel AI SDK's ``generateObject`` and ``generateText`` with tools, under node.

Each backend (CLI and runner) gets one server for the module. The fake model answers
as the model would for the backend: a tool call where the client offered a tool, the
structured answer the way the CLI asks for it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import openai
import pytest
from pydantic import BaseModel

from tests.e2e.harness import ROOT, ProxyServer
from tests.e2e.realcli import copilot_cache, start_real_server  # noqa: F401
from tests.e2e.test_clients import CLIENTS_DIR, node_clients, run_client
from tests.fakemodel.server import FakeModelApi, ModelCall, Reply, ToolCall

pytestmark = pytest.mark.real_cli


def claude_tool(name: str) -> str:
    """claude's name for a client tool: the request's MCP server is called "client"."""
    return f"mcp__client__{name}"


def copilot_mcp_tool(name: str) -> str:
    """copilot's one-shot name for a client tool of the request's MCP server "client"."""
    return f"client-{name}"


def claude_structured(value: dict[str, Any]) -> Reply:
    """claude answers ``--json-schema`` by calling its StructuredOutput tool."""
    return Reply("", (ToolCall("StructuredOutput", value),), for_tool="StructuredOutput")


def text_structured(value: dict[str, Any]) -> Reply:
    """copilot: the schema is asked for in the system text, the answer is plain JSON."""
    return Reply(json.dumps(value))


@dataclass(frozen=True)
class Backend:
    service: str
    runner: str
    model: str
    model_tool: Callable[[str], str]  # the name the model sees for a client's tool
    structured: Callable[[dict[str, Any]], Reply]  # the model's structured answer

    def __str__(self) -> str:
        return f"{self.service}-{self.runner}"


BACKENDS = [
    Backend("claude", "oneshot", "sonnet", claude_tool, claude_structured),
    Backend("claude", "persistent", "sonnet", claude_tool, claude_structured),
    # copilot's one-shot runner serves the tools as MCP server "client"; its persistent
    # runner declares them as the session's own custom tools, under the client's names.
    Backend("copilot", "oneshot", "claude-sonnet-4.6", copilot_mcp_tool, text_structured),
    Backend("copilot", "persistent", "claude-sonnet-4.6", str, text_structured),
]


@dataclass
class Target:
    backend: Backend
    api: FakeModelApi
    server: ProxyServer

    def tool_call(self, name: str, arguments: dict[str, Any]) -> Reply:
        model_name = self.backend.model_tool(name)
        return Reply("", (ToolCall(model_name, arguments),), for_tool=model_name)

    @contextmanager
    def answering(self, text: str) -> Iterator[None]:
        """Plain text for every turn meanwhile: the CLI's side requests take scripted
        text too, so a final answer is the default one, not a scripted reply."""
        default, self.api.default_text = self.api.default_text, text
        try:
            yield
        finally:
            self.api.default_text = default

    def turns_since(self, start: int) -> list[ModelCall]:
        return [c for c in self.api.calls[start:] if c.body.get("messages")]


@pytest.fixture(scope="module", params=BACKENDS, ids=str)
def target(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    copilot_cache: Path,  # noqa: F811
) -> Iterator[Target]:
    backend: Backend = request.param
    tmp = tmp_path_factory.mktemp(str(backend))
    home = tmp / "home"
    home.mkdir()
    api = FakeModelApi().start()
    try:
        server = start_real_server(tmp, backend.service, backend.runner, api, home, copilot_cache)
        try:
            yield Target(backend, api, server)
        finally:
            server.stop()
    finally:
        api.stop()


@pytest.fixture(autouse=True)
def every_scripted_answer_was_taken(target: Target) -> Iterator[None]:
    """A scripted answer left over means the request never reached the model the way the
    test meant it to (a tool not offered, a format not asked for); it must not answer the
    next test instead."""
    yield
    left = list(target.api._replies)  # the fake's queue: no public view of it
    target.api._replies.clear()
    assert left == [], f"never asked for: {left}"


class Work(BaseModel):
    title: str
    year: int | None = None


class Person(BaseModel):
    """A person the model knows of."""

    name: str
    age: int
    # A nested model and an optional field: the schema then has $defs, $ref and anyOf,
    # as most real ones do.
    known_for: Work | None = None


ADA = {"name": "Ada", "age": 36, "known_for": {"title": "Note G", "year": 1843}}
ADA_PERSON = Person(name="Ada", age=36, known_for=Work(title="Note G", year=1843))


def offered(call: ModelCall, name: str) -> dict[str, Any] | None:
    """The tool ``name`` as the model was offered it, in either wire format."""
    for tool in call.body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        spec = function if isinstance(function, dict) else tool
        if isinstance(spec, dict) and spec.get("name") == name:
            return spec
    return None


def offered_anywhere(target: Target, start: int, name: str) -> dict[str, Any]:
    specs = [s for c in target.turns_since(start) if (s := offered(c, name)) is not None]
    assert specs, f"the model was never offered {name}"
    return specs[-1]


def schema_of(spec: dict[str, Any]) -> Any:
    return spec.get("input_schema") or spec.get("parameters")


# -- the OpenAI SDK -------------------------------------------------------------------------


def test_openai_sdk_parse_gives_the_pydantic_model(target: Target) -> None:
    target.api.script(target.backend.structured(ADA))
    completion = target.server.client().chat.completions.parse(
        model=target.backend.model,
        messages=[{"role": "user", "content": "Who wrote the first program?"}],
        response_format=Person,
    )
    message = completion.choices[0].message
    assert message.parsed == ADA_PERSON
    assert message.refusal is None


class GetWeather(BaseModel):
    """The weather in a city."""

    city: str


def test_openai_sdk_parse_gives_a_strict_pydantic_tools_arguments(target: Target) -> None:
    target.api.script(target.tool_call("GetWeather", {"city": "Lima"}))
    completion = target.server.client().chat.completions.parse(
        model=target.backend.model,
        messages=[{"role": "user", "content": "Weather in Lima?"}],
        tools=[openai.pydantic_function_tool(GetWeather)],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [c.function.parsed_arguments for c in calls] == [GetWeather(city="Lima")]


def readme_tool_example() -> str:
    """The README's tool-calling example, as a reader would copy it."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    found = [b for b in blocks if "def get_weather" in b and "tool_call_id" in b]
    assert len(found) == 1, "the README has one tool-calling example"
    return str(found[0])


def test_the_readmes_tool_calling_example_runs(target: Target) -> None:
    code = readme_tool_example()
    code = code.replace("http://127.0.0.1:3456/v1", target.server.base_url)
    code = code.replace('model="sonnet"', f'model="{target.backend.model}"')
    start = len(target.api.calls)
    target.api.script(target.tool_call("get_weather", {"city": "Paris"}))
    out = io.StringIO()
    with target.answering("Sunny and 24 C in Paris."), redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert out.getvalue() == "Sunny and 24 C in Paris.\n"
    assert "sunny, 24 C in Paris" in target.turns_since(start)[-1].conversation_text


def test_openai_sdk_stream_helper_parses_the_pydantic_model(target: Target) -> None:
    target.api.script(target.backend.structured(ADA))
    with target.server.client().chat.completions.stream(
        model=target.backend.model,
        messages=[{"role": "user", "content": "Who wrote the first program?"}],
        response_format=Person,
    ) as stream:
        pieces = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == ADA_PERSON
    assert json.loads("".join(pieces)) == ADA


# -- LangChain --------------------------------------------------------------------------------


def langchain_model(target: Target) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=target.server.base_url,
        api_key="unused",  # type: ignore[arg-type]
        model=target.backend.model,
        max_retries=0,
        timeout=90,
    )


def test_langchain_agent_loop_runs_the_tool_and_answers(target: Target) -> None:
    """Streamed, as agents mostly run: LangChain adds up the tool-call chunks itself (the
    test below asks without streaming)."""
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
    from langchain_core.tools import tool

    ran: list[str] = []

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return f"sunny, 24 C in {city}"

    start = len(target.api.calls)
    target.api.script(target.tool_call("get_weather", {"city": "Paris"}))
    llm = langchain_model(target).bind_tools([get_weather])
    messages: list[BaseMessage] = [HumanMessage("What is the weather in Paris?")]
    answer = None
    with target.answering("It is sunny in Paris."):
        # The loop every agent runs: ask, run the tools it called, ask again.
        for _ in range(3):
            reply = streamed_whole(llm, messages)
            messages.append(reply)
            if not reply.tool_calls:
                answer = reply
                break
            for call in reply.tool_calls:
                result = get_weather.invoke(call["args"])
                messages.append(ToolMessage(result, tool_call_id=call["id"]))
    assert ran == ["Paris"]
    assert answer is not None and answer.content == "It is sunny in Paris."
    first_call = messages[1]
    assert isinstance(first_call, AIMessage)
    assert [c["name"] for c in first_call.tool_calls] == ["get_weather"]
    # The model got the tool's schema as LangChain made it, and later the tool's result.
    spec = offered_anywhere(target, start, target.backend.model_tool("get_weather"))
    assert schema_of(spec)["properties"] == {"city": {"type": "string"}}
    last = target.turns_since(start)[-1]
    assert "sunny, 24 C in Paris" in last.conversation_text


def streamed_whole(llm: Any, messages: list[Any]) -> Any:
    """The model's answer streamed, added up into one message as LangChain does it."""
    whole = None
    for chunk in llm.stream(messages):
        whole = chunk if whole is None else whole + chunk
    assert whole is not None
    return whole


def test_langchain_parallel_calls_to_a_required_tool(target: Target) -> None:
    """tool_choice "any" (OpenAI's "required"), two calls at once, one of a tool without
    arguments, and results sent back as content blocks, as LangChain allows."""
    from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
    from langchain_core.tools import BaseTool, tool

    @tool
    def now() -> str:
        """The time now."""
        return "12:00"

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"rain in {city}"

    tools: dict[str, BaseTool] = {"now": now, "weather": weather}
    model_tool = target.backend.model_tool
    calls = (ToolCall(model_tool("now"), {}), ToolCall(model_tool("weather"), {"city": "Rome"}))
    target.api.script(Reply("", calls, for_tool=model_tool("now")))
    start = len(target.api.calls)
    messages: list[BaseMessage] = [HumanMessage("The time and the weather in Rome?")]
    llm = langchain_model(target).bind_tools(list(tools.values()), tool_choice="any")
    first = llm.invoke(messages)
    assert [(c["name"], c["args"]) for c in first.tool_calls] == [
        ("now", {}),
        ("weather", {"city": "Rome"}),
    ]
    messages.append(first)
    for call in first.tool_calls:
        result = tools[call["name"]].invoke(call["args"])
        blocks: list[str | dict[str, Any]] = [{"type": "text", "text": result}]
        messages.append(ToolMessage(blocks, tool_call_id=call["id"]))
    with target.answering("Noon, and rain in Rome."):
        final = langchain_model(target).bind_tools(list(tools.values())).invoke(messages)
    assert final.content == "Noon, and rain in Rome."
    last = target.turns_since(start)[-1].conversation_text
    assert "12:00" in last and "rain in Rome" in last


Method = Literal["json_schema", "function_calling", "json_mode"]


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_langchain_with_structured_output(target: Target, method: Method) -> None:
    start = len(target.api.calls)
    if method == "function_calling":
        # LangChain offers the model as a tool and names it in tool_choice.
        target.api.script(target.tool_call("Person", ADA))
    else:
        target.api.script(target.backend.structured(ADA))
    structured = langchain_model(target).with_structured_output(Person, method=method)
    question = "Who wrote the first program? Answer in JSON with name and age."
    person = structured.invoke(question)
    assert person == ADA_PERSON
    if method == "function_calling":
        spec = offered_anywhere(target, start, target.backend.model_tool("Person"))
        properties = schema_of(spec)["properties"]
        assert set(properties) == {"name", "age", "known_for"}
        assert "year" in json.dumps(spec)  # the nested model came along


# -- the Vercel AI SDK, under node ------------------------------------------------------------


def run_ai_sdk(target: Target, mode: str, question: str) -> dict[str, Any]:
    node = node_clients()
    if not (CLIENTS_DIR / "node_modules" / "zod").is_dir():
        pytest.fail("tests/clients/node_modules has no zod: run npm ci in tests/clients")
    argv = [node, str(CLIENTS_DIR / "node_clients.mjs"), "ai-sdk", mode]
    return run_client([*argv, target.server.base_url, target.backend.model, question])


@pytest.mark.parametrize("mode", ["object", "output"])
def test_ai_sdk_structured_object(target: Target, mode: str) -> None:
    """``object``: generateObject with the provider's default, a json_object request whose
    answer the SDK checks against its zod schema; ``output``: generateText with
    Output.object and supportsStructuredOutputs, a json_schema request."""
    target.api.script(target.backend.structured(ADA))
    result = run_ai_sdk(target, mode, "Who wrote the first program?")
    assert result["object"] == ADA
    assert result["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("mode", "content"),
    [
        # generateText's text is the last step's; streamText's stream has every step's.
        pytest.param("tools", "Cold and clear in Oslo.", id="generateText"),
        pytest.param("tools-stream", "Let me look.Cold and clear in Oslo.", id="streamText"),
    ],
)
def test_ai_sdk_runs_the_tool_and_answers(target: Target, mode: str, content: str) -> None:
    """generateText and streamText with a tool to execute; the model says something
    before it calls the tool, as models do."""
    start = len(target.api.calls)
    call = target.tool_call("get_weather", {"city": "Oslo"})
    target.api.script(Reply("Let me look.", call.tool_calls, for_tool=call.for_tool))
    with target.answering("Cold and clear in Oslo."):
        result = run_ai_sdk(target, mode, "What is the weather in Oslo?")
    assert result["ran"] == [{"city": "Oslo"}]
    assert result["steps"] == ["tool-calls", "stop"]
    assert result["content"] == content
    spec = offered_anywhere(target, start, target.backend.model_tool("get_weather"))
    assert schema_of(spec)["required"] == ["city"]
    assert "minus 3 C in Oslo" in target.turns_since(start)[-1].conversation_text
