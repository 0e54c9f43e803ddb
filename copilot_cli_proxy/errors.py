"""Every error the API can return, with its OpenAI envelope and HTTP status, in one place.

Raise ``ProxyError`` anywhere (validation, backends, gate); the HTTP layer turns it
into ``{"error": {"message", "type", "code", "param"}}`` with ``status`` and ``headers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# code -> (HTTP status, OpenAI error type, whether a client retry can help)
ERROR_TABLE: dict[str, tuple[int, str, bool]] = {
    "invalid_json": (400, "invalid_request_error", False),
    "invalid_request": (400, "invalid_request_error", False),
    "unsupported_parameter": (400, "invalid_request_error", False),
    "unsupported_content": (400, "invalid_request_error", False),
    "too_many_messages": (400, "invalid_request_error", False),
    "invalid_api_key": (401, "authentication_error", False),
    "not_found": (404, "invalid_request_error", False),
    "model_not_found": (404, "invalid_request_error", False),
    "ambiguous_model": (400, "invalid_request_error", False),
    "method_not_allowed": (405, "invalid_request_error", False),
    "request_timeout": (408, "invalid_request_error", True),
    "request_too_large": (413, "invalid_request_error", False),
    "prompt_too_large": (413, "invalid_request_error", False),
    "unsupported_media_type": (415, "invalid_request_error", False),
    "rate_limit_exceeded": (429, "rate_limit_error", True),
    "server_busy": (429, "rate_limit_error", True),
    "too_many_auth_failures": (429, "rate_limit_error", True),
    "internal_error": (500, "server_error", True),
    "cli_failed": (502, "server_error", True),
    "invalid_structured_output": (502, "server_error", True),
    # tool_choice asked for a call ("required" or a named function) and the model answered
    # without it: never passed off as a plain text answer.
    "tool_choice_not_followed": (502, "server_error", True),
    "cli_not_found": (503, "server_error", False),
    "cli_start_failed": (503, "server_error", True),
    "cli_not_logged_in": (503, "server_error", False),
    "cli_unavailable": (503, "server_error", True),
    "server_unavailable": (503, "server_error", True),
    "cancelled": (503, "server_error", True),
    "timeout": (504, "server_error", True),
    # An HTTP upstream (backends/openai_http.py).
    "backend_not_logged_in": (503, "server_error", False),
    "backend_auth_failed": (503, "server_error", False),
    "upstream_rate_limited": (429, "rate_limit_error", True),
    "upstream_error": (502, "server_error", True),
    # The upstream refused the request itself: its own status (400, 404…) and message.
    "upstream_rejected": (400, "invalid_request_error", False),
}


class Outcome(StrEnum):
    """What an upstream failure says about the upstream, for the failover pool's node states."""

    RATE_LIMITED = "rate_limited"  # 429: wait Retry-After
    AUTH_FAILED = "auth_failed"  # credential missing, expired or refused: the operator's job
    UNREACHABLE = "unreachable"  # connection refused or reset, DNS
    TIMEOUT = "timeout"  # no byte within the backend's timeout
    REJECTED = "rejected"  # 400/404: this request, not the upstream, is at fault
    SERVER_ERROR = "server_error"  # 5xx or a broken answer


# Answered before the request body was read (or while it was still arriving): the
# connection is closed after the answer, so a rejected client cannot keep streaming
# its body into a read-and-discard loop on a kept-alive connection.
CLOSES_CONNECTION = frozenset(
    {"invalid_api_key", "too_many_auth_failures", "request_too_large", "request_timeout"}
)
# Client-supplied text echoed in an error or a log is cut to this many characters.
MAX_ECHO_CHARS = 200


def clip(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with a marker that says how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[{len(text)} characters, cut]"


@dataclass(eq=False)
class ProxyError(Exception):
    """An error with a stable ``code`` from ``ERROR_TABLE`` and a message for the API client."""

    code: str
    message: str
    param: str | None = None
    retry_after: int | None = None
    # Set by HTTP backends: what the failure says about the upstream.
    outcome: Outcome | None = None
    # An upstream's own status passed through (upstream_rejected); else the table's.
    http_status: int | None = None

    def __post_init__(self) -> None:
        if self.code not in ERROR_TABLE:
            raise ValueError(f"unknown error code {self.code!r}")
        if self.http_status is not None and not 400 <= self.http_status <= 599:
            raise ValueError(f"http_status must be an error status, got {self.http_status}")
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return self.http_status or ERROR_TABLE[self.code][0]

    @property
    def type(self) -> str:
        return ERROR_TABLE[self.code][1]

    @property
    def retryable(self) -> bool:
        return ERROR_TABLE[self.code][2]

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        # The official OpenAI SDKs retry 5xx/429 unless told otherwise; a retry
        # cannot fix a missing CLI or a CLI that is not logged in.
        headers["x-should-retry"] = "true" if self.retryable else "false"
        if self.code in CLOSES_CONNECTION:
            headers["Connection"] = "close"
        return headers
