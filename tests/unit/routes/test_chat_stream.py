"""The chat route's answer, event by event (``ChatResponder`` in routes/chat.py).

A backend plays a script of events in-process; the app is called straight through ASGI,
so each test sees every message the route sends and can leave mid-answer the way a
client does (an ``http.disconnect``). What is checked is the order a client relies on:
the role chunk first, text and tool-call deltas as they come, one finish, usage last,
``[DONE]``; an error before the first byte is a real status, after it a final SSE error
event; a client that leaves stops the backend.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.types import Message

from copilot_cli_proxy.app import create_app
from copilot_cli_proxy.backends.base import (
    BackendEvent,
    Finish,
    RunRecord,
    TextDelta,
    ToolCallEvent,
    Usage,
)
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.requests import ChatRequest
from tests.unit.scripted import MODEL, ScriptedBackend, request_logs, scripted_settings

PAUSE = "pause"  # in a script: the backend waits here until the request is cancelled
Step = BackendEvent | ProxyError | str


@dataclass
class Played:
    """What the backend did with its script."""

    started: anyio.Event = field(default_factory=anyio.Event)
    paused: anyio.Event = field(default_factory=anyio.Event)
    steps_done: int = 0
    closed: bool = False  # its events were closed (a CLI would be stopped here)


def scripted_app(tmp_path: Path, script: Sequence[Step]) -> tuple[Starlette, Played]:
    settings = scripted_settings(tmp_path)
    backend = ScriptedBackend(settings)
    played = Played()

    async def stream(request: ChatRequest, record: RunRecord) -> AsyncGenerator[BackendEvent, None]:
        played.started.set()
        try:
            for step in script:
                if isinstance(step, ProxyError):
                    raise step
                if step == PAUSE:
                    played.paused.set()
                    await anyio.sleep_forever()
                assert not isinstance(step, str)
                yield step
                played.steps_done += 1
        finally:
            played.closed = True

    backend.stream = stream  # type: ignore[method-assign]
    return create_app(settings, backend), played


@dataclass
class Answer:
    messages: list[Message]

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    def frames(self) -> list[str]:
        text = self.body.decode()
        assert text.endswith("\n\n"), "every SSE frame is complete"
        frames = text.split("\n\n")[:-1]
        assert all(f.startswith("data: ") for f in frames)
        return [f[6:] for f in frames]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(f) for f in self.frames() if f != "[DONE]"]


async def call(app: Starlette, body: dict[str, Any], *, leave: anyio.Event | None = None) -> Answer:
    """One request straight through ASGI; the client leaves once ``leave`` is set."""
    sent: list[Message] = []
    raw = json.dumps(body).encode()
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        if leave is None:
            await anyio.sleep_forever()
        else:
            await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"proxy.test")],
        "client": ("203.0.113.7", 40000),
        "server": ("proxy.test", 80),
    }
    with anyio.fail_after(10):
        await app(scope, receive, send)
    return Answer(sent)


def chat(stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        **extra,
    }


def deltas(answer: Answer) -> list[dict[str, Any]]:
    return [e["choices"][0]["delta"] for e in answer.events() if e.get("choices")]


def finishes(answer: Answer) -> list[str]:
    return [
        e["choices"][0]["finish_reason"]
        for e in answer.events()
        if e.get("choices") and e["choices"][0]["finish_reason"]
    ]


def only_record(tmp_path: Path) -> dict[str, Any]:
    (path,) = request_logs(tmp_path)
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


# -- a stream that goes well ----------------------------------------------------------------


async def test_role_chunk_first_then_each_delta_then_one_stop_then_done(tmp_path: Path) -> None:
    app, played = scripted_app(
        tmp_path, [TextDelta("Hel"), TextDelta("lo "), TextDelta("wörld"), Finish()]
    )
    answer = await call(app, chat())
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert deltas(answer) == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo "},
        {"content": "wörld"},
        {},
    ]
    assert finishes(answer) == ["stop"]
    assert answer.frames()[-1] == "[DONE]"
    events = answer.events()
    assert {e["id"] for e in events} == {events[0]["id"]}
    assert {e["model"] for e in events} == {MODEL}
    assert all("usage" not in e for e in events)
    assert answer.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert played.closed


async def test_usage_is_one_last_chunk_without_choices_when_asked_for(tmp_path: Path) -> None:
    script = [TextDelta("hi"), Usage(prompt_tokens=7, completion_tokens=2), Finish()]
    app, _ = scripted_app(tmp_path, script)
    answer = await call(app, chat(stream_options={"include_usage": True}))
    *chunks, last = answer.events()
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert answer.frames()[-1] == "[DONE]"


async def test_an_answer_with_no_text_still_starts_with_the_role(tmp_path: Path) -> None:
    app, _ = scripted_app(tmp_path, [Finish("length")])
    answer = await call(app, chat())
    assert deltas(answer) == [{"role": "assistant", "content": ""}, {}]
    assert finishes(answer) == ["length"]


async def test_tool_calls_are_deltas_numbered_in_order_and_finish_with_tool_calls(
    tmp_path: Path,
) -> None:
    script = [
        ToolCallEvent("call_a", "get_weather", '{"city": "Oslo"}'),
        ToolCallEvent("call_b", "get_time", "{}"),
        Finish("tool_calls"),
    ]
    app, _ = scripted_app(tmp_path, script)
    answer = await call(app, chat())
    first, *calls, last = deltas(answer)
    assert first == {"role": "assistant", "content": ""}
    assert [c["tool_calls"][0]["index"] for c in calls] == [0, 1]
    assert [c["tool_calls"][0]["id"] for c in calls] == ["call_a", "call_b"]
    assert calls[0]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Oslo"}',
    }
    assert last == {}
    assert finishes(answer) == ["tool_calls"]


async def test_a_stop_sequence_split_across_deltas_cuts_and_stops_the_backend(
    tmp_path: Path,
) -> None:
    app, played = scripted_app(
        tmp_path, [TextDelta("alpha ST"), TextDelta("OP beta"), PAUSE, Finish()]
    )
    answer = await call(app, chat(stop=["STOP"]))
    text = "".join(d.get("content") or "" for d in deltas(answer))
    assert text == "alpha "
    assert finishes(answer) == ["stop"]
    assert answer.frames()[-1] == "[DONE]"
    assert played.closed and not played.paused.is_set(), "the rest is not waited for"


async def test_once_finished_the_backend_is_closed_not_read_on(tmp_path: Path) -> None:
    """A CLI must not run on past its answer (after tool calls it would go on without
    the client's results): its events are closed at the finish."""
    app, played = scripted_app(tmp_path, [TextDelta("hi"), Finish(), TextDelta("never")])
    answer = await call(app, chat())
    assert finishes(answer) == ["stop"]
    assert [d.get("content") for d in deltas(answer)] == ["", "hi", None]
    assert played.closed and played.steps_done == 1


# -- what goes wrong ------------------------------------------------------------------------


async def test_an_error_before_any_text_is_a_real_status_not_a_stream(tmp_path: Path) -> None:
    app, _ = scripted_app(tmp_path, [ProxyError("cli_not_logged_in", "Log in: run login.")])
    answer = await call(app, chat())
    assert answer.status == 503
    assert answer.headers["content-type"].startswith("application/json")
    error = json.loads(answer.body)["error"]
    assert (error["code"], error["type"]) == ("cli_not_logged_in", "server_error")
    assert only_record(tmp_path)["status"] == 503


async def test_an_error_after_some_text_is_a_final_error_event(tmp_path: Path) -> None:
    script = [TextDelta("half an "), ProxyError("cli_failed", "The CLI exited with 1.")]
    app, played = scripted_app(tmp_path, script)
    answer = await call(app, chat())
    assert answer.status == 200
    *chunks, last = answer.events()
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "half an "},
    ]
    assert last["error"]["code"] == "cli_failed"
    assert last["error"]["message"] == "The CLI exited with 1."
    assert "[DONE]" not in answer.frames()
    assert finishes(answer) == [], "a failed answer never ends with a fake finish_reason"
    assert played.closed
    record = only_record(tmp_path)
    assert (record["status"], record["error_code"]) == (502, "cli_failed")


async def test_a_backend_that_ends_without_finishing_is_an_error_event(tmp_path: Path) -> None:
    app, _ = scripted_app(tmp_path, [TextDelta("cut sh")])
    answer = await call(app, chat())
    last = answer.events()[-1]
    assert last["error"]["code"] == "cli_failed"
    assert "before finishing" in last["error"]["message"]
    assert finishes(answer) == [] and "[DONE]" not in answer.frames()


async def test_a_client_that_leaves_mid_stream_stops_the_backend(tmp_path: Path) -> None:
    app, played = scripted_app(tmp_path, [TextDelta("first "), PAUSE, TextDelta("never")])
    leave = anyio.Event()
    result: list[Answer] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            result.append(await call(app, chat(), leave=leave))

        tg.start_soon(run)
        with anyio.fail_after(10):
            await played.paused.wait()
        leave.set()
    (answer,) = result
    assert played.closed, "the backend's events were closed: its CLI is stopped"
    assert [d.get("content") for d in deltas(answer)] == ["", "first "]
    assert all(m["more_body"] for m in answer.messages[1:]), "the body was never ended"
    record = only_record(tmp_path)
    assert (record["status"], record["error_code"]) == (499, "client_disconnected")


# -- a whole answer -------------------------------------------------------------------------


async def test_a_whole_answer_joins_text_and_calls_in_one_body(tmp_path: Path) -> None:
    script = [
        TextDelta("Let me "),
        TextDelta("check."),
        ToolCallEvent("call_a", "get_weather", "{}"),
        Usage(prompt_tokens=4, completion_tokens=3),
        Finish("tool_calls"),
    ]
    app, _ = scripted_app(tmp_path, script)
    answer = await call(app, chat(stream=False))
    assert answer.status == 200
    body = json.loads(answer.body)
    (choice,) = body["choices"]
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"][0]["id"] == "call_a"
    assert choice["finish_reason"] == "tool_calls"
    assert body["usage"]["total_tokens"] == 7


async def test_a_whole_answer_that_fails_midway_is_only_the_error(tmp_path: Path) -> None:
    app, _ = scripted_app(tmp_path, [TextDelta("half"), ProxyError("cli_failed", "exit 1")])
    answer = await call(app, chat(stream=False))
    assert answer.status == 502
    assert json.loads(answer.body) == {
        "error": {
            "message": "exit 1",
            "type": "server_error",
            "param": None,
            "code": "cli_failed",
        }
    }
