from __future__ import annotations

import json

import pytest

from copilot_cli_proxy.errors import ERROR_TABLE, ProxyError, clip

OPENAI_TYPES = {
    "invalid_request_error",
    "authentication_error",
    "rate_limit_error",
    "server_error",
}


@pytest.mark.parametrize("code", sorted(ERROR_TABLE))
def test_every_code_builds_an_openai_envelope(code: str) -> None:
    status, kind, _ = ERROR_TABLE[code]
    error = ProxyError(code, f"message for {code}", param="messages")

    assert error.status == status
    assert error.body() == {
        "error": {
            "message": f"message for {code}",
            "type": kind,
            "param": "messages",
            "code": code,
        }
    }
    assert json.loads(json.dumps(error.body())) == error.body()


@pytest.mark.parametrize("code", sorted(ERROR_TABLE))
def test_every_code_has_an_error_status_and_a_known_type(code: str) -> None:
    status, kind, retryable = ERROR_TABLE[code]
    assert 400 <= status <= 599
    assert kind in OPENAI_TYPES
    assert isinstance(retryable, bool)


@pytest.mark.parametrize("code", sorted(ERROR_TABLE))
def test_param_is_null_when_not_given(code: str) -> None:
    assert ProxyError(code, "m").body()["error"]["param"] is None


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("invalid_json", 400),
        ("invalid_request", 400),
        ("unsupported_parameter", 400),
        ("unsupported_content", 400),
        ("invalid_api_key", 401),
        ("model_not_found", 404),
        ("request_too_large", 413),
        ("prompt_too_large", 413),
        ("server_busy", 429),
        ("rate_limit_exceeded", 429),
        ("internal_error", 500),
        ("cli_failed", 502),
        ("cli_not_found", 503),
        ("cli_not_logged_in", 503),
        ("timeout", 504),
    ],
)
def test_status_of_well_known_codes(code: str, status: int) -> None:
    assert ProxyError(code, "m").status == status


def test_unknown_code_is_refused() -> None:
    with pytest.raises(ValueError, match="no_such_code"):
        ProxyError("no_such_code", "m")


def test_is_an_exception_whose_text_is_the_message() -> None:
    error = ProxyError("timeout", "took too long")
    assert isinstance(error, Exception)
    assert str(error) == "took too long"
    with pytest.raises(ProxyError) as caught:
        raise error
    assert caught.value.code == "timeout"


def test_retry_after_header() -> None:
    headers = ProxyError("server_busy", "busy", retry_after=7).headers()
    assert headers["Retry-After"] == "7"
    assert headers["x-should-retry"] == "true"


def test_no_retry_after_header_without_a_value() -> None:
    assert "Retry-After" not in ProxyError("server_busy", "busy").headers()


@pytest.mark.parametrize("code", sorted(ERROR_TABLE))
def test_should_retry_header_follows_the_table(code: str) -> None:
    expected = "true" if ERROR_TABLE[code][2] else "false"
    assert ProxyError(code, "m").headers()["x-should-retry"] == expected


@pytest.mark.parametrize("code", ["cli_not_found", "cli_not_logged_in", "invalid_request"])
def test_a_retry_cannot_fix_a_missing_or_logged_out_cli_or_a_bad_request(code: str) -> None:
    error = ProxyError(code, "m")
    assert error.retryable is False
    assert error.headers()["x-should-retry"] == "false"


@pytest.mark.parametrize("code", ["server_busy", "timeout", "cli_failed", "rate_limit_exceeded"])
def test_transient_failures_are_retryable(code: str) -> None:
    assert ProxyError(code, "m").retryable is True


def test_message_with_multibyte_text_survives_the_envelope() -> None:
    error = ProxyError("invalid_request", "'messages[0].role' '사용자' is not a role")
    assert error.body()["error"]["message"] == "'messages[0].role' '사용자' is not a role"


@pytest.mark.parametrize("code", sorted(ERROR_TABLE))
def test_answers_before_the_body_is_read_close_the_connection(code: str) -> None:
    closes = code in (
        "invalid_api_key",
        "too_many_auth_failures",
        "request_too_large",
        "request_timeout",
    )
    assert (ProxyError(code, "m").headers().get("Connection") == "close") is closes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("a" * 200, "a" * 200),
        ("a" * 201, "a" * 200 + "…[201 characters, cut]"),
        ("é" * 5000, "é" * 200 + "…[5000 characters, cut]"),
    ],
)
def test_clip_cuts_long_text_and_says_so(text: str, expected: str) -> None:
    assert clip(text) == expected
