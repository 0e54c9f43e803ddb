"""OpenAIChat through the real openai SDK, over an in-process HTTP transport."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from chat_client.api import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, OpenAIChat, build_client
from chat_client.config import ChatConfig
from chat_client.conversation import Message
from chat_client.errors import IncompleteAnswerError, describe_error

try:  # openai >= 3 speaks httpx2; older releases speak httpx. Build what the SDK uses.
    import httpx2 as http
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx as http  # type: ignore[no-redef]

BASE = "http://stub.test/v1"
Handler = Callable[[Any], Any]


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def sse(*events: dict[str, Any], done: bool = True) -> bytes:
    frames = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
    return b"".join(frames) + (b"data: [DONE]\n\n" if done else b"")


class RecordingStream(http.SyncByteStream):
    """A response body that remembers being closed."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.parts

    def close(self) -> None:
        self.closed = True


class Recorder:
    def __init__(self, respond: Handler) -> None:
        self.respond = respond
        self.requests: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        return self.respond(request)

    def body(self, index: int = -1) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.requests[index].content)
        return result


def chat(respond: Handler, *, stream: bool = True) -> tuple[OpenAIChat, Recorder]:
    recorder = Recorder(respond)
    client = openai.OpenAI(
        base_url=BASE,
        api_key="test-key",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(recorder)),
    )
    return OpenAIChat(client, stream=stream), recorder


def sse_response(body: bytes) -> Any:
    return http.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def error_response(status: int, message: str, code: str, **headers: str) -> Any:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return http.Response(status, json={"error": error}, headers=headers)


MESSAGES = (Message("system", "Be terse."), Message("user", "hi"))


def test_streams_each_piece_as_it_arrives_and_returns_the_whole() -> None:
    body = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo, "}),
        chunk({"content": "wörld"}),
        chunk({}, finish_reason="stop"),
    )
    api, recorder = chat(lambda _: sse_response(body))
    pieces: list[str] = []
    assert api.answer("gpt-5-mini", MESSAGES, pieces.append) == "Hello, wörld"
    assert pieces == ["Hel", "lo, ", "wörld"]
    sent = recorder.body()
    assert sent["model"] == "gpt-5-mini"
    assert sent["stream"] is True
    assert sent["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "hi"},
    ]
    assert recorder.requests[-1].url == BASE + "/chat/completions"
    assert recorder.requests[-1].headers["authorization"] == "Bearer test-key"


def test_no_model_asks_for_the_server_default() -> None:
    api, recorder = chat(lambda _: sse_response(sse(chunk({}, finish_reason="stop"))))
    assert api.answer(None, MESSAGES, lambda _: None) == ""
    assert recorder.body()["model"] == ""


def test_non_streaming_answer_arrives_whole() -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "All at once."},
                "finish_reason": "stop",
            }
        ],
    }
    api, recorder = chat(lambda _: http.Response(200, json=completion), stream=False)
    pieces: list[str] = []
    assert api.answer("m", MESSAGES, pieces.append) == "All at once."
    assert pieces == ["All at once."]
    assert "stream" not in recorder.body() or recorder.body()["stream"] is False


def test_stream_that_ends_without_finish_reason_is_incomplete() -> None:
    body = sse(chunk({"content": "half"}), done=False)
    api, _ = chat(lambda _: sse_response(body))
    with pytest.raises(IncompleteAnswerError):
        api.answer("m", MESSAGES, lambda _: None)


def test_error_event_in_the_middle_of_the_stream() -> None:
    failure = {
        "error": {
            "message": "The CLI stopped before finishing its answer.",
            "type": "server_error",
            "param": None,
            "code": "cli_failed",
        }
    }
    body = sse(chunk({"content": "partial "}), failure, done=False)
    api, _ = chat(lambda _: sse_response(body))
    pieces: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        api.answer("m", MESSAGES, pieces.append)
    assert pieces == ["partial "]
    assert describe_error(caught.value, BASE) == (
        "The answer failed midway [cli_failed]: The CLI stopped before finishing its answer."
    )


def test_a_body_that_is_not_json_raises_a_value_error() -> None:
    # The REPL reports ValueError as a failed turn; pin that this is what escapes.
    api, _ = chat(lambda _: sse_response(b"data: <html>oops</html>\n\n"))
    with pytest.raises(ValueError) as caught:
        api.answer("m", MESSAGES, lambda _: None)
    assert describe_error(caught.value, BASE).startswith("The server's answer was not valid JSON")


def test_unknown_model_shows_only_the_servers_message() -> None:
    message = "The model 'x' does not exist or is not served here. Available models: a, b."
    api, _ = chat(lambda _: error_response(404, message, "model_not_found"))
    with pytest.raises(openai.NotFoundError) as caught:
        api.answer("x", MESSAGES, lambda _: None)
    assert describe_error(caught.value, BASE) == f"Not found (404): {message} See /models."


def test_rate_limit_keeps_retry_after_and_is_not_retried() -> None:
    api, recorder = chat(
        lambda _: error_response(429, "Slow down.", "rate_limit_exceeded", **{"Retry-After": "3"})
    )
    with pytest.raises(openai.RateLimitError) as caught:
        api.answer("m", MESSAGES, lambda _: None)
    assert describe_error(caught.value, BASE) == "Rate limited (429): Slow down. Retry after 3 s."
    assert len(recorder.requests) == 1


def test_wrong_key() -> None:
    api, _ = chat(lambda _: error_response(401, "Invalid API key.", "invalid_api_key"))
    with pytest.raises(openai.AuthenticationError) as caught:
        api.answer("m", MESSAGES, lambda _: None)
    assert "(401): Invalid API key." in describe_error(caught.value, BASE)


def test_server_down() -> None:
    def refuse(request: Any) -> Any:
        raise http.ConnectError("[Errno 111] Connection refused", request=request)

    api, recorder = chat(refuse)
    with pytest.raises(openai.APIConnectionError) as caught:
        api.answer("m", MESSAGES, lambda _: None)
    assert describe_error(caught.value, BASE).startswith(f"Cannot reach the server at {BASE}")
    assert len(recorder.requests) == 1


def test_ctrl_c_during_the_answer_closes_the_response() -> None:
    body = RecordingStream(
        [sse(chunk({"content": "one "}), done=False), sse(chunk({"content": "two"}), done=False)]
    )
    api, _ = chat(lambda _: http.Response(200, stream=body))

    def interrupt(_: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.answer("m", MESSAGES, interrupt)
    assert body.closed


def test_model_ids_lists_the_server_models() -> None:
    models = {
        "object": "list",
        "data": [
            {"id": "gpt-5-mini", "object": "model", "created": 0, "owned_by": "github"},
            {"id": "claude-sonnet-4.5", "object": "model", "created": 0, "owned_by": "github"},
        ],
    }
    api, recorder = chat(lambda _: http.Response(200, json=models))
    assert api.model_ids() == ["gpt-5-mini", "claude-sonnet-4.5"]
    assert recorder.requests[-1].method == "GET"
    assert recorder.requests[-1].url == BASE + "/models"


def test_build_client_never_retries_and_has_a_timeout() -> None:
    config = ChatConfig(server_url="http://h:9/", api_key=None)
    client = build_client(config)
    assert client.max_retries == 0
    assert str(client.base_url).rstrip("/") == "http://h:9/v1"
    assert client.api_key == config.effective_api_key
    assert isinstance(client.timeout, openai.Timeout)
    assert client.timeout.connect == CONNECT_TIMEOUT_S
    assert client.timeout.read == READ_TIMEOUT_S
