"""kind = "openai" through the server, with the official SDK: one server runs a CLI backend
and an OpenAI-compatible upstream (tests/fakeupstream) side by side.

What a client sees: tool calls and their results round trip, JSON-schema output, image
parts and n choices reach the upstream untouched, the stream is the upstream's chunk for
chunk (only ``model`` renamed), and upstream failures are the documented statuses. The
contract every backend shares (a drop mid-stream, a client that leaves, timeouts, big
prompts) is tests/e2e/conformance.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.harness import FAKES, ProxyServer, ask, start_server
from tests.fakeupstream.server import FakeUpstream, Fault, Reply, ToolCall

API_KEY = "sk-server-key-77ab"
UPSTREAM_TOKEN = "github_pat_11UPSTREAMTOKENFORTESTS000000"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
    "/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[ProxyServer]:
    tmp_path = tmp_path_factory.mktemp("openai-backend")
    backends = tmp_path / "backends.toml"
    backends.write_text(
        f"""
[[backend]]
id = "copilot"
kind = "copilot-cli"
runner = "persistent"
cli_path = "{FAKES / "copilot"}"
env = ["FAKE_CLI_PID_DIR"]

[[backend]]
id = "up"
kind = "openai"
base_url = "{upstream.url}/v1"
auth = {{ type = "bearer", token_env = "UPSTREAM_TOKEN" }}
headers = {{ "X-Team" = "docs" }}
timeout_s = 30
"""
    )
    proxy = start_server(
        tmp_path,
        {
            "BACKENDS_FILE": str(backends),
            "API_KEY": API_KEY,
            "UPSTREAM_TOKEN": UPSTREAM_TOKEN,
            "STATE_DIR": str(tmp_path / "state"),
            "REQUEST_TIMEOUT": "30000",
        },
    )
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def sdk(server: ProxyServer) -> openai.OpenAI:
    return server.client(api_key=API_KEY)


def test_models_of_the_cli_and_the_upstream_are_listed(sdk: openai.OpenAI) -> None:
    models = {m.id: m.owned_by for m in sdk.models.list()}
    assert models["gpt-5-mini"] == "copilot"
    assert models["gpt-4.1"] == "up" and models["up/gpt-4.1-mini"] == "up"


def test_both_backends_answer_at_once(sdk: openai.OpenAI, upstream: FakeUpstream) -> None:
    def one(model: str) -> str:
        reply = sdk.chat.completions.create(model=model, messages=ask(f"hi {model}"))
        assert reply.model == model
        return reply.choices[0].message.content or ""

    names = ["gpt-5-mini", "gpt-4.1", "up/gpt-4.1-mini", "copilot/gpt-5-mini"] * 2
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        answers = list(pool.map(one, names))
    for name, text in zip(names, answers, strict=True):
        expected = upstream.default_text if "gpt-4.1" in name else f"echo: hi {name}"
        assert text == expected
    sent = upstream.chat_requests()[-1]
    assert sent.authorization == f"Bearer {UPSTREAM_TOKEN}"
    assert sent.headers["x-team"] == "docs"
    assert not {"editor-version", "copilot-integration-id"} & set(sent.headers)
    assert API_KEY not in json.dumps(sent.headers)  # the client's key stays here


def test_a_tool_call_round_trip(sdk: openai.OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(
        Reply("", (ToolCall("get_weather", {"city": "Oslo"}),)),
        Reply("It is sunny in Oslo."),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    with sdk.chat.completions.stream(model="gpt-4.1", messages=messages, tools=[WEATHER]) as s:
        first = s.get_final_completion()
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "clear", "temp_c": 21}'},
    ]
    second = sdk.chat.completions.create(model="gpt-4.1", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "It is sunny in Oslo."
    sent = upstream.chat_requests()[-1].body
    assert sent["messages"][1]["tool_calls"][0]["id"] == call.id
    assert sent["messages"][2] == messages[2]
    assert sent["tools"] == [WEATHER]


def test_response_format_json_schema_reaches_the_upstream(
    sdk: openai.OpenAI, upstream: FakeUpstream
) -> None:
    upstream.script(Reply('{"city": "Oslo", "temp_c": 21}'))
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temp_c": {"type": "integer"}},
        "required": ["city", "temp_c"],
        "additionalProperties": False,
    }
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "weather", "strict": True, "schema": schema},
    }
    reply = sdk.chat.completions.create(
        model="gpt-4.1", messages=ask("weather as JSON"), response_format=response_format
    )
    assert json.loads(reply.choices[0].message.content or "") == {"city": "Oslo", "temp_c": 21}
    assert upstream.chat_requests()[-1].body["response_format"] == response_format


def test_an_image_part_and_n_choices_reach_the_upstream(
    sdk: openai.OpenAI, upstream: FakeUpstream
) -> None:
    content: Any = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}},
    ]
    reply = sdk.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": content}], n=2, seed=3
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.choices[1].message.content == f"{upstream.default_text} #1"
    sent = upstream.chat_requests()[-1].body
    assert sent["messages"][0]["content"] == content
    assert (sent["n"], sent["seed"]) == (2, 3)


def test_the_stream_is_the_upstreams_chunk_for_chunk(
    server: ProxyServer, upstream: FakeUpstream
) -> None:
    upstream.script(Reply("Grüße — streamed as is, 🎉 emoji included.", piece_chars=3))
    body = {
        "model": "up/gpt-4.1",
        "messages": ask("hi"),
        "stream": True,
        "stream_options": {"include_usage": True},
        "logprobs": True,
    }
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.stream(
        "POST", server.base_url + "/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    ours = [json.loads(line[6:]) for line in lines[:-1]]
    theirs = [json.loads(e) for e in upstream.streams[-1] if e != "[DONE]"]
    assert ours == [{**chunk, "model": "up/gpt-4.1"} for chunk in theirs]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in ours if c["choices"])
    assert text == "Grüße — streamed as is, 🎉 emoji included."
    assert ours[-1]["usage"]["completion_tokens"] > 0
    assert upstream.chat_requests()[-1].body["stream_options"] == {"include_usage": True}


def test_upstream_errors_keep_their_meaning(sdk: openai.OpenAI, upstream: FakeUpstream) -> None:
    upstream.fail_next(
        Fault("status", status=429, headers={"Retry-After": "9"}),
        Fault("status", status=400, body={"error": {"message": "bad max_tokens", "param": "x"}}),
        Fault("status", status=500),
    )
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.chat.completions.create(model="gpt-4.1", messages=ask("a"))
    assert limited.value.response.headers["retry-after"] == "9"
    with pytest.raises(openai.BadRequestError) as rejected:
        sdk.chat.completions.create(model="gpt-4.1", messages=ask("b"))
    assert "bad max_tokens" in rejected.value.message
    with pytest.raises(openai.InternalServerError) as failed:
        sdk.chat.completions.create(model="gpt-4.1", messages=ask("c"))
    assert failed.value.status_code == 502


def test_health_shows_the_upstream_backend(server: ProxyServer) -> None:
    backends = {b["id"]: b for b in httpx.get(server.url + "/health").json()["backends"]}
    up = backends["up"]
    assert (up["kind"], up["state"], up["logged_in"]) == ("openai", "ok", True)
    assert up["base_url"].endswith("/v1") and up["problems"] == []
    assert UPSTREAM_TOKEN not in json.dumps(backends)
