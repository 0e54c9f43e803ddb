"""The contract of a failure, over every backend kind and runner: a backend that fails
or refuses its credential is one OpenAI error envelope with the same status class
whatever the backend; after the first byte it is a final SSE error event, never a fake
``finish_reason``; and nothing of the request is left behind."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.e2e.targets import Target

# What "the backend failed" is called, by the kind of backend: the status is a 5xx the
# client may retry, whichever it is.
BACKEND_FAILED = {"cli_failed": 502, "upstream_error": 502, "cli_unavailable": 503}


def envelope(error: openai.APIStatusError) -> dict[str, Any]:
    body = error.response.json()
    assert set(body) == {"error"}
    fields: dict[str, Any] = body["error"]
    assert isinstance(fields["message"], str) and fields["message"]
    assert isinstance(fields["code"], str) and fields["code"]
    assert "param" in fields
    return fields


def test_a_backend_failure_is_a_retryable_5xx_envelope(target: Target) -> None:
    """A CLI that exits non-zero, an upstream's 500: the same shape and status class.
    (Streamed, a failure before the first byte is a status too: the refused login below.)
    The persistent copilot runner's crash takes its one long-lived process down, so it
    says 503 ``cli_unavailable`` (the next request starts a fresh one): a server error
    the client may retry, as the others."""
    with pytest.raises(openai.APIStatusError) as caught:
        target.server.client().chat.completions.create(
            model=target.model, messages=target.failing_before_text()
        )
    fields = envelope(caught.value)
    assert BACKEND_FAILED.get(fields["code"]) == caught.value.status_code
    assert fields["type"] == "server_error"
    assert caught.value.response.headers["x-should-retry"] == "true"
    target.settle()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_refused_login_is_a_503_envelope_not_a_200(target: Target, stream: bool) -> None:
    with target.logged_out() as messages, pytest.raises(openai.APIStatusError) as caught:
        result = target.server.client().chat.completions.create(
            model=target.model, messages=messages, stream=stream
        )
        if stream:
            list(result)
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"
    fields = envelope(caught.value)
    assert fields["type"] == "server_error"
    assert fields["code"] in ("cli_not_logged_in", "backend_auth_failed")
    assert "login" in fields["message"]
    target.settle()
    # The login is back: so is the answer (a refusal is not remembered against it).
    answer = target.server.client().chat.completions.create(
        model=target.model, messages=target.answering("back")
    )
    assert answer.choices[0].message.content == "back"


def test_a_failure_mid_stream_is_a_final_error_event_without_a_fake_stop(
    target: Target,
) -> None:
    body = {"model": target.model, "messages": target.failing_after_text(), "stream": True}
    with (
        target.server.http() as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        frames = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert "[DONE]" not in frames
    events = [json.loads(frame) for frame in frames]
    *chunks, last = events
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )
    assert text, "some text arrived before the failure"
    assert not any(c["choices"][0].get("finish_reason") for c in chunks if c.get("choices"))
    error = last["error"]
    assert error["type"] == "server_error"
    assert error["code"] in BACKEND_FAILED
    assert error["message"]
    target.settle()


def test_the_sdk_raises_on_the_mid_stream_error_event(target: Target) -> None:
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in target.server.client().chat.completions.create(
            model=target.model, messages=target.failing_after_text(), stream=True
        ):
            assert not (chunk.choices and chunk.choices[0].finish_reason)
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(received)
    target.settle()
