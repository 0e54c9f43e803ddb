"""Every failure the chat can meet, as one line a person can act on. Pure: no I/O."""

from __future__ import annotations

import json
import re

import openai

# Long enough for the server's list of valid model ids, short enough for one line.
MAX_DETAIL_CHARS = 600


class IncompleteAnswerError(Exception):
    """The stream ended without a finish_reason: the connection was cut mid-answer."""


def _one_line(text: str) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    if len(flat) > MAX_DETAIL_CHARS:
        return flat[: MAX_DETAIL_CHARS - 1] + "…"
    return flat


def server_message(error: openai.APIError) -> str:
    """The server's own words: ``error.message`` from the OpenAI envelope when present.

    The SDK hands us the envelope's inner object as ``body`` and builds ``message`` as
    "Error code: 404 - …"; the raw body text is the fallback for non-JSON answers.
    """
    body = error.body
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message.strip():
            return _one_line(message)
    if isinstance(body, str) and body.strip():
        return _one_line(body)
    return _one_line(error.message)


def _retry_after(error: openai.APIStatusError) -> str | None:
    value = error.response.headers.get("retry-after")
    if value is None or not value.strip():
        return None
    value = value.strip()
    # Seconds are the common form; an HTTP date is shown as the server sent it.
    return f"{value} s" if value.isdigit() else value


def _cause(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    return f" ({_one_line(str(cause))})" if cause is not None and str(cause) else ""


def describe_error(error: BaseException, server: str) -> str:
    """One line for ``error``; ``server`` is the base URL the chat talks to."""
    if isinstance(error, openai.APITimeoutError):
        return f"The server at {server} did not answer in time; try again."
    if isinstance(error, openai.APIConnectionError):
        return (
            f"Cannot reach the server at {server}{_cause(error)}. Is it running? "
            "Set --server or COPILOT_SERVER_URL."
        )
    if isinstance(error, openai.AuthenticationError):
        return (
            f"The server refused the API key (401): {server_message(error)} "
            "Set --api-key or COPILOT_API_KEY."
        )
    if isinstance(error, openai.NotFoundError):
        return f"Not found (404): {server_message(error)} See /models."
    if isinstance(error, openai.RateLimitError):
        wait = _retry_after(error)
        hint = f" Retry after {wait}." if wait else " Wait a moment and retry."
        return f"Rate limited (429): {server_message(error)}{hint}"
    if isinstance(error, openai.APIStatusError):
        return f"Server error {error.status_code}: {server_message(error)}"
    if isinstance(error, openai.APIResponseValidationError):
        return f"The server's answer was not in the OpenAI shape: {server_message(error)}"
    if isinstance(error, openai.APIError):
        # No status: the server sent an error event after the answer had begun.
        code = f" [{error.code}]" if error.code else ""
        return f"The answer failed midway{code}: {server_message(error)}"
    if isinstance(error, json.JSONDecodeError):
        return f"The server's answer was not valid JSON ({error.msg}, at character {error.pos})."
    if isinstance(error, IncompleteAnswerError):
        return f"The answer was cut off: {_one_line(str(error))}"
    return f"{type(error).__name__}: {_one_line(str(error))}"
