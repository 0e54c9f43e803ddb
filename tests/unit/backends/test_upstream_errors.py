"""An upstream's failures, mapped: status, code, message and the typed outcome."""

from __future__ import annotations

import json

import httpx
import pytest

from copilot_cli_proxy.backends.upstream_errors import (
    error_from_exception,
    error_from_response,
    parse_retry_after,
    upstream_message,
)
from copilot_cli_proxy.errors import Outcome, ProxyError


def body(message: str, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": "x", "param": param}}).encode()


@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_request_error_passes_its_status_message_and_param_through(status: int) -> None:
    error = error_from_response("up", status, {}, body("max_tokens is too large", "max_tokens"))
    assert (error.status, error.code, error.outcome) == (status, "upstream_rejected", "rejected")
    assert error.message == "max_tokens is too large"
    assert error.param == "max_tokens"
    assert error.body()["error"]["type"] == "invalid_request_error"
    assert error.headers()["x-should-retry"] == "false"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_credential_is_the_operators_503(status: int) -> None:
    error = error_from_response("up", status, {}, body("Bad credentials"))
    assert (error.status, error.code, error.outcome) == (503, "backend_auth_failed", "auth_failed")
    assert "copilot-cli-proxy login up" in error.message


def test_429_keeps_the_upstreams_retry_after() -> None:
    error = error_from_response("up", 429, {"retry-after": "7"}, body("slow down"))
    assert (error.status, error.code, error.outcome) == (
        429,
        "upstream_rate_limited",
        "rate_limited",
    )
    assert error.headers()["Retry-After"] == "7"
    assert error.retryable


@pytest.mark.parametrize("status", [500, 502, 503, 402, 418])
def test_server_errors_and_odd_statuses_are_502(status: int) -> None:
    error = error_from_response("up", status, {}, b"<html>oops</html>")
    assert (error.status, error.code, error.outcome) == (502, "upstream_error", "server_error")
    assert f"HTTP {status}" in error.message and "oops" in error.message


@pytest.mark.parametrize(
    ("exc", "status", "outcome"),
    [
        (httpx.ConnectError("refused"), 502, Outcome.UNREACHABLE),
        (httpx.ConnectTimeout("slow"), 502, Outcome.UNREACHABLE),
        (httpx.RemoteProtocolError("peer closed"), 502, Outcome.UNREACHABLE),
        (httpx.ReadError("reset"), 502, Outcome.UNREACHABLE),
        (httpx.ReadTimeout("stall"), 504, Outcome.TIMEOUT),
        (httpx.PoolTimeout("pool"), 504, Outcome.TIMEOUT),
        (httpx.UnsupportedProtocol("x"), 502, Outcome.SERVER_ERROR),
    ],
)
def test_transport_failures(exc: httpx.HTTPError, status: int, outcome: Outcome) -> None:
    error = error_from_exception("up", exc, 2.5)
    assert (error.status, error.outcome) == (status, outcome)


def test_a_timeout_says_how_long_was_waited() -> None:
    assert "within 2.5 s" in error_from_exception("up", httpx.ReadTimeout("x"), 2.5).message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7),
        ("1.2", 2),
        ("-3", 0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_retry_after(value: str | None, seconds: int | None) -> None:
    now = 1445412480.0  # 2015-10-21 07:28:00 GMT
    assert parse_retry_after(value, now=now) == seconds


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"error": {"message": "m", "param": "p"}}', ("m", "p")),
        (b'{"error": "plain"}', ("plain", None)),
        (b'{"message": "GitHub says", "documentation_url": "u"}', ("GitHub says", None)),
        (b"not json", ("not json", None)),
        (b"", (None, None)),
        (b"[1, 2]", (None, None)),
    ],
)
def test_upstream_message_shapes(raw: bytes, expected: tuple[str | None, str | None]) -> None:
    assert upstream_message(raw) == expected


def test_an_explicit_status_must_be_an_error_status() -> None:
    with pytest.raises(ValueError, match="error status"):
        ProxyError("upstream_rejected", "x", http_status=200)
