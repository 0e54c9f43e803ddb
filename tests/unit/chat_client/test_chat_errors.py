"""Each SDK error class, built for real, becomes one line a person can act on."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from chat_client.errors import MAX_DETAIL_CHARS, IncompleteAnswerError, describe_error

try:  # openai >= 3 speaks httpx2; older releases speak httpx. Build what the SDK uses.
    import httpx2 as http
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx as http  # type: ignore[no-redef]

SERVER = "http://127.0.0.1:3456/v1"
REQUEST = http.Request("POST", SERVER + "/chat/completions")


def envelope(message: str, code: str, type_: str = "invalid_request_error") -> dict[str, Any]:
    # What the SDK keeps as ``body``: the inner object of {"error": {...}}.
    return {"message": message, "type": type_, "param": None, "code": code}


def status_error(
    cls: type[openai.APIStatusError],
    status: int,
    body: object,
    headers: dict[str, str] | None = None,
) -> openai.APIStatusError:
    response = http.Response(status, headers=headers, request=REQUEST)
    return cls(f"Error code: {status}", response=response, body=body)


def assert_one_line(text: str) -> None:
    assert text and "\n" not in text and "\r" not in text


def test_connection_error_names_the_server_and_the_fix() -> None:
    error = openai.APIConnectionError(request=REQUEST)
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    text = describe_error(error, SERVER)
    assert_one_line(text)
    assert text.startswith(f"Cannot reach the server at {SERVER}")
    assert "Connection refused" in text
    assert "COPILOT_SERVER_URL" in text


def test_connection_error_without_a_cause() -> None:
    text = describe_error(openai.APIConnectionError(request=REQUEST), SERVER)
    assert text.startswith(f"Cannot reach the server at {SERVER}. Is it running?")


def test_timeout_is_not_reported_as_a_down_server() -> None:
    text = describe_error(openai.APITimeoutError(request=REQUEST), SERVER)
    assert_one_line(text)
    assert "did not answer in time" in text
    assert "Cannot reach" not in text


def test_authentication_error_shows_the_server_message_and_the_fix() -> None:
    error = status_error(
        openai.AuthenticationError,
        401,
        envelope("Invalid API key.", "invalid_api_key", "authentication_error"),
    )
    text = describe_error(error, SERVER)
    assert_one_line(text)
    assert text == (
        "The server refused the API key (401): Invalid API key. Set --api-key or COPILOT_API_KEY."
    )


def test_not_found_shows_the_server_message_listing_valid_ids() -> None:
    message = (
        "The model 'gpt-9' does not exist or is not served here. "
        "Available models: gpt-5-mini, claude-sonnet-4.5."
    )
    error = status_error(openai.NotFoundError, 404, envelope(message, "model_not_found"))
    text = describe_error(error, SERVER)
    assert_one_line(text)
    assert text == f"Not found (404): {message} See /models."


@pytest.mark.parametrize(
    ("headers", "hint"),
    [
        ({"Retry-After": "7"}, "Retry after 7 s."),
        ({"retry-after": " 30 "}, "Retry after 30 s."),
        (
            {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"},
            "Retry after Wed, 21 Oct 2026 07:28:00 GMT.",
        ),
        ({}, "Wait a moment and retry."),
        ({"Retry-After": ""}, "Wait a moment and retry."),
    ],
)
def test_rate_limit_shows_retry_after_when_present(headers: dict[str, str], hint: str) -> None:
    body = envelope("Too many requests.", "rate_limit_exceeded", "rate_limit_error")
    error = status_error(openai.RateLimitError, 429, body, headers)
    text = describe_error(error, SERVER)
    assert_one_line(text)
    assert text == f"Rate limited (429): Too many requests. {hint}"


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (openai.BadRequestError, 400),
        (openai.PermissionDeniedError, 403),
        (openai.ConflictError, 409),
        (openai.UnprocessableEntityError, 422),
        (openai.InternalServerError, 500),
        (openai.InternalServerError, 503),
        (openai.APIStatusError, 418),
    ],
)
def test_other_status_errors_show_status_and_server_message(
    cls: type[openai.APIStatusError], status: int
) -> None:
    body = envelope("The copilot CLI is not logged in.", "cli_not_logged_in", "server_error")
    text = describe_error(status_error(cls, status, body), SERVER)
    assert text == f"Server error {status}: The copilot CLI is not logged in."


def test_status_error_with_a_non_json_body_shows_the_text() -> None:
    error = status_error(openai.InternalServerError, 502, "<html>\n  Bad gateway\n</html>")
    assert describe_error(error, SERVER) == "Server error 502: <html> Bad gateway </html>"


def test_status_error_without_a_body_falls_back_to_the_sdk_message() -> None:
    error = status_error(openai.InternalServerError, 500, None)
    assert describe_error(error, SERVER) == "Server error 500: Error code: 500"


def test_error_event_in_the_middle_of_a_stream() -> None:
    # What the SDK raises for ``data: {"error": {...}}`` after the answer began.
    body = envelope("The CLI stopped before finishing its answer.", "cli_failed", "server_error")
    error = openai.APIError(str(body["message"]), REQUEST, body=body)
    text = describe_error(error, SERVER)
    assert_one_line(text)
    assert text == (
        "The answer failed midway [cli_failed]: The CLI stopped before finishing its answer."
    )


def test_error_event_without_code() -> None:
    error = openai.APIError("An error occurred during streaming", REQUEST, body=None)
    assert describe_error(error, SERVER) == (
        "The answer failed midway: An error occurred during streaming"
    )


def test_response_validation_error() -> None:
    response = http.Response(200, request=REQUEST)
    error = openai.APIResponseValidationError(response, body="not an object")
    assert describe_error(error, SERVER).startswith("The server's answer was not in the OpenAI")


def test_incomplete_answer() -> None:
    text = describe_error(IncompleteAnswerError("the stream ended early."), SERVER)
    assert text == "The answer was cut off: the stream ended early."


def test_body_that_is_not_json() -> None:
    try:
        json.loads("data: oops")
    except json.JSONDecodeError as error:
        text = describe_error(error, SERVER)
    assert text == "The server's answer was not valid JSON (Expecting value, at character 0)."


def test_anything_else_names_its_type() -> None:
    assert describe_error(ValueError("bad\nthing"), SERVER) == "ValueError: bad thing"


def test_long_server_messages_are_cut_to_one_readable_line() -> None:
    message = "Available models: " + ", ".join(f"model-{i}" for i in range(500))
    error = status_error(openai.NotFoundError, 404, envelope(message, "model_not_found"))
    text = describe_error(error, SERVER)
    assert_one_line(text)
    assert "…" in text
    assert len(text) < MAX_DETAIL_CHARS + 40
