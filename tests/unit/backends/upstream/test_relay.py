"""The openai backend against the fake upstream: what goes up, and what comes back, as is."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from copilot_cli_proxy.backends.openai_http import CAPABILITIES, OpenAIUpstreamBackend
from copilot_cli_proxy.core.types import UpstreamChunk
from tests.fakeupstream.server import FakeUpstream, Fault, Reply, ToolCall
from tests.unit.backends.upstream.helpers import (
    ASK,
    TOKEN,
    make_backend,
    relay_all,
    sent_events,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


async def test_stream_relays_every_chunk_as_the_upstream_sent_it(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    fake.script(
        Reply("Hello there, how are you today?", (ToolCall("get_weather", {"city": "Oslo"}),))
    )
    body = {**ASK, "tools": TOOLS, "n": 2, "logprobs": True}
    chunks = await relay_all(backend, body, include_usage=True)
    assert chunks == sent_events(fake)
    # The wire format the fake follows: tool calls as deltas, both choices, usage last.
    assert any("tool_calls" in c["choices"][0]["delta"] for c in chunks if c["choices"])
    assert {c["choices"][0]["index"] for c in chunks if c["choices"]} == {0, 1}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


async def test_the_upstream_gets_the_clients_body_with_its_own_model_and_usage_asked(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    body = {
        **ASK,
        "tools": TOOLS,
        "tool_choice": "auto",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        "temperature": 0.2,
        "seed": 7,
        "stop": ["END"],
        "max_tokens": 50,
        "n": 2,
        "logprobs": True,
        "top_logprobs": 2,
    }
    await relay_all(backend, body, model="gpt-4.1-mini", include_usage=True)
    sent = fake.chat_requests()[-1].body
    assert sent == {
        **body,
        "model": "gpt-4.1-mini",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_non_stream_yields_the_whole_body_once(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    fake.script(Reply("two answers", (ToolCall("get_weather", {"city": "Rome"}),)))
    (body,) = await relay_all(backend, {**ASK, "n": 2, "logprobs": True}, stream=False)
    assert [c["message"]["content"] for c in body["choices"]] == ["two answers", "two answers #1"]
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert body["choices"][0]["logprobs"]["content"]
    assert body["usage"]["total_tokens"] > 0
    assert "stream" not in fake.chat_requests()[-1].body


async def test_chunks_arrive_while_the_upstream_is_still_answering(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    """No buffering: the first chunks reach us while the upstream holds back the rest."""
    fake.fail_next(Fault("stall", after_chunks=3, seconds=30))
    relay = backend.relay(ASK, model="gpt-4.1", stream=True, include_usage=False)
    got = [await anext(relay) for _ in range(3)]
    assert fake.active_streams == 1 and fake.stream_ends == []
    assert [c.data for c in got if isinstance(c, UpstreamChunk)] == sent_events(fake)[:3]
    await relay.aclose()


async def test_headers_carry_the_token_read_at_request_time_and_no_editor_headers(
    fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UP_TOKEN", TOKEN)
    backend = make_backend(
        fake,
        tmp_path,
        auth={"type": "bearer", "token_env": "UP_TOKEN"},
        headers={"X-Team": "docs"},
    )
    try:
        await relay_all(backend)
        monkeypatch.setenv("UP_TOKEN", TOKEN + "-rotated")
        await relay_all(backend, stream=False)
    finally:
        await backend.stop()
    first, second = fake.chat_requests()
    assert first.authorization == f"Bearer {TOKEN}"
    assert second.authorization == f"Bearer {TOKEN}-rotated"
    assert first.headers["x-team"] == "docs"
    assert first.headers["user-agent"].startswith("copilot-cli-proxy/")
    editor = {"editor-version", "editor-plugin-version", "copilot-integration-id"}
    assert not editor & set(first.headers)


async def test_requests_share_one_kept_alive_connection(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    for stream in (True, False, True):
        await relay_all(backend, stream=stream)
    assert backend.connections() == {"open": 1, "busy": 0}


async def test_stop_closes_the_client(backend: OpenAIUpstreamBackend) -> None:
    await relay_all(backend)
    await backend.stop()
    assert backend.connections() == {"open": 0, "busy": 0}


async def test_closing_the_relay_mid_stream_closes_the_upstream_request(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    fake.script(Reply("x" * 400, piece_chars=1))
    fake.chunk_delay_s = 0.05
    relay = backend.relay(ASK, model="gpt-4.1", stream=True, include_usage=False)
    for _ in range(3):
        await anext(relay)
    await relay.aclose()
    assert fake.wait_for(lambda f: f.stream_ends == ["cancelled"])
    assert fake.active_streams == 0
    assert backend.connections()["busy"] == 0


async def test_a_cancelled_consumer_leaves_no_connection_busy(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    """The client going away cancels the task that reads the relay."""
    fake.script(Reply("y" * 400, piece_chars=1))
    fake.chunk_delay_s = 0.05
    seen = 0

    async def consume(scope: anyio.CancelScope) -> None:
        nonlocal seen
        async for _ in backend.relay(ASK, model="gpt-4.1", stream=True, include_usage=False):
            seen += 1
            if seen == 3:
                scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, tg.cancel_scope)
    assert seen == 3
    assert fake.wait_for(lambda f: f.stream_ends == ["cancelled"])
    assert backend.connections()["busy"] == 0
    # The pool is still good for the next request.
    assert await relay_all(backend)


def test_capabilities_cover_what_the_upstream_can_do(backend: OpenAIUpstreamBackend) -> None:
    assert backend.capabilities == CAPABILITIES
    assert {"tools", "tool_choice", "response_format", "images", "n", "logprobs"} <= CAPABILITIES
    assert {"sampling", "stop", "seed", "max_tokens"} <= CAPABILITIES
    assert backend.kind == "openai"
