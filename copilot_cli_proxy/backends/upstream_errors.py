"""An HTTP upstream's failures as ``ProxyError``s in the OpenAI envelope, with a typed outcome.

- 400/404 (and 409, 413, 415, 422) about the request: the upstream's status and message,
  passed through;
- 401/403 (after one refresh and retry): 503 ``backend_auth_failed``, the operator's
  credential, not the client's;
- 429: 429 with the upstream's ``Retry-After``;
- other 4xx and every 5xx, a refused or reset connection: 502;
- a timeout: 504.

Pure functions over a status, headers and body, so each rule is unit-tested alone.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from copilot_cli_proxy.errors import Outcome, ProxyError, clip

# Enough of an error body for its message; a huge one is not read further.
MAX_ERROR_BODY = 64 * 1024
PASSED_THROUGH = frozenset({400, 404, 409, 413, 415, 422})


def parse_retry_after(value: str | None, now: float | None = None) -> int | None:
    """Seconds from ``Retry-After`` (delta-seconds or an HTTP date), rounded up; else None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0, math.ceil(seconds))


def upstream_message(body: bytes) -> tuple[str | None, str | None]:
    """The ``error.message`` and ``error.param`` of an error body, in any common shape."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return (clip(text, 500) if text else None), None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message, param = error.get("message"), error.get("param")
        return (
            str(message) if message is not None else None,
            param if isinstance(param, str) else None,
        )
    if isinstance(error, str):  # {"error": "..."} (llama.cpp, some proxies)
        return error, None
    if isinstance(data, dict) and isinstance(data.get("message"), str):  # GitHub's shape
        return str(data["message"]), None
    return None, None


def error_from_response(
    backend_id: str, status: int, headers: Mapping[str, str], body: bytes
) -> ProxyError:
    """The error for an upstream's non-2xx answer. 401/403 arrive here after the retry."""
    message, param = upstream_message(body)
    said = f": {clip(message, 1000)}" if message else ""
    if status in (401, 403):
        return ProxyError(
            "backend_auth_failed",
            f"The upstream of backend {backend_id!r} refused its credential (HTTP {status}"
            f"{said}). The server's operator must renew it "
            f"(copilot-cli-proxy login {backend_id}).",
            outcome=Outcome.AUTH_FAILED,
        )
    if status == 429:
        return ProxyError(
            "upstream_rate_limited",
            f"The upstream of backend {backend_id!r} is rate limiting{said or '.'}",
            retry_after=parse_retry_after(headers.get("retry-after")),
            outcome=Outcome.RATE_LIMITED,
        )
    if status in PASSED_THROUGH:
        return ProxyError(
            "upstream_rejected",
            message or f"The upstream of backend {backend_id!r} rejected the request.",
            param=param,
            http_status=status,
            outcome=Outcome.REJECTED,
        )
    return ProxyError(
        "upstream_error",
        f"The upstream of backend {backend_id!r} failed (HTTP {status}{said}).",
        outcome=Outcome.SERVER_ERROR,
    )


def error_from_exception(backend_id: str, exc: httpx.HTTPError, timeout_s: float) -> ProxyError:
    """The error for a transport failure: no answer, a reset, or no byte in time."""
    where = f"the upstream of backend {backend_id!r}"
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return ProxyError(
            "upstream_error",
            f"Cannot connect to {where}: {_reason(exc)}.",
            outcome=Outcome.UNREACHABLE,
        )
    if isinstance(exc, httpx.TimeoutException):
        return ProxyError(
            "timeout",
            f"No answer from {where} within {timeout_s:g} s.",
            outcome=Outcome.TIMEOUT,
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return ProxyError(
            "upstream_error",
            f"The connection to {where} broke: {_reason(exc)}.",
            outcome=Outcome.UNREACHABLE,
        )
    return ProxyError(
        "upstream_error",
        f"Request to {where} failed: {_reason(exc)}.",
        outcome=Outcome.SERVER_ERROR,
    )


def _reason(exc: Exception) -> str:
    # httpx messages name the peer and the failure; never a header (the token stays out).
    return clip(str(exc).rstrip(".") or type(exc).__name__, 300)


def broken_answer(backend_id: str, detail: str) -> ProxyError:
    return ProxyError(
        "upstream_error",
        f"The upstream of backend {backend_id!r} sent a broken answer: {detail}.",
        outcome=Outcome.SERVER_ERROR,
    )
