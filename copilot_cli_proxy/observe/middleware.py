"""The outermost middleware: request id, one log record and one metrics sample per request.

Whatever happens inside — an answer, a gate's refusal, an error, the client leaving,
a timeout, the server shutting down — the record is written exactly once, in a
shielded ``finally`` after the inner app returns. The chat route leaves its
``Outcome`` (and the parsed request) in ``scope["state"]`` for it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from loguru import logger
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from copilot_cli_proxy.errors import ProxyError, clip
from copilot_cli_proxy.gate.clientip import ProxyTrust, client_ip
from copilot_cli_proxy.observe.metrics import Metrics
from copilot_cli_proxy.observe.redact import Redactor
from copilot_cli_proxy.observe.requestid import pick_request_id
from copilot_cli_proxy.observe.requestlog import (
    RequestLogWriter,
    iso_utc,
    run_fields,
    usage_fields,
)
from copilot_cli_proxy.protocol.responses import sse_error
from copilot_cli_proxy.routes.chat import Outcome
from copilot_cli_proxy.routes.common import error_response

KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
ERROR_BODY_CAP = 16 * 1024  # enough to read an error envelope's code
RESPONSE_BODY_CAP = 1024 * 1024  # LOG_RESPONSE_BODY keeps at most this much
# Polled: their summary line is DEBUG, and their request log file only with LOG_PROBES.
QUIET_PATHS = frozenset({"/health", "/metrics"})


@dataclass
class Exchange:
    """What the middleware saw of one request and its response."""

    request_id: str
    method: str
    path: str
    client_ip: str
    started_wall: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)
    status: int | None = None
    first_byte_at: float | None = None
    completed_at: float | None = None
    disconnected: bool = False
    failed: bool = False
    cancelled: bool = False  # by the server stopping, before the response was complete
    request_body: bytearray | None = None
    response_body: bytearray | None = None
    error_body: bytearray = field(default_factory=bytearray)
    event_stream: bool = False


@dataclass(frozen=True, slots=True)
class ObserveOptions:
    backend: str  # the first backend's id: a request refused before routing is logged under it
    proxy_trust: ProxyTrust | None = None
    log_request_body: bool = False
    log_response_body: bool = False
    log_probes: bool = False
    max_body_bytes: int = 8 * 1024 * 1024


class ObserveMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        writer: RequestLogWriter | None,
        redactor: Redactor,
        options: ObserveOptions,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.writer = writer
        self.redactor = redactor
        self.options = options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        headers = Headers(scope=scope)
        exchange = Exchange(
            request_id=pick_request_id(
                headers.getlist("x-request-id"), self.redactor.contains_secret
            ),
            method=str(scope["method"]),
            path=clip(str(scope["path"])),
            client_ip=client_ip(scope, self.options.proxy_trust),
        )
        state["request_id"] = exchange.request_id
        state["client_ip"] = exchange.client_ip
        id_header = (b"x-request-id", exchange.request_id.encode("ascii"))
        if self.options.log_request_body:
            exchange.request_body = bytearray()

        async def observed_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and exchange.request_body is not None:
                room = self.options.max_body_bytes - len(exchange.request_body)
                exchange.request_body += message.get("body", b"")[: max(0, room)]
            return message

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = int(message["status"])
                exchange.first_byte_at = time.monotonic()
                content_type = Headers(raw=list(message.get("headers", []))).get("content-type")
                exchange.event_stream = (content_type or "").startswith("text/event-stream")
                message = {**message, "headers": [*message.get("headers", []), id_header]}
                if self.options.log_response_body:
                    exchange.response_body = bytearray()
            elif message["type"] == "http.response.body":
                self._keep_body(exchange, message.get("body", b""))
                if not message.get("more_body", False):
                    exchange.completed_at = time.monotonic()
            await send(message)

        with logger.contextualize(request_id=exchange.request_id):
            try:
                await self.app(scope, observed_receive, observed_send)
            except ClientDisconnect:
                exchange.disconnected = True
            except anyio.get_cancelled_exc_class():
                # The server is stopping and uvicorn cancelled this request's task (the chat
                # route ends its own answers before that: routes/common.py InFlight). This
                # is the top of the task: answer the client here and end the task quietly,
                # or uvicorn logs the cancellation as an application error and sends a
                # plain-text 500.
                exchange.cancelled = exchange.completed_at is None
                with anyio.CancelScope(shield=True):
                    await self._answer_cancelled(exchange, scope, observed_send)
            except Exception as exc:
                # What starlette's ServerErrorMiddleware would do, with our envelope and id.
                exchange.failed = True
                logger.opt(exception=exc).error(
                    "unexpected error on {} {}", exchange.method, exchange.path
                )
                if exchange.status is None:
                    error = ProxyError("internal_error", f"Internal error: {type(exc).__name__}.")
                    try:
                        await error_response(error)(scope, receive, observed_send)
                    except OSError:
                        pass
            finally:
                with anyio.CancelScope(shield=True):
                    await self._finish(exchange, scope, state)

    async def _answer_cancelled(self, exchange: Exchange, scope: Scope, send: Send) -> None:
        if exchange.completed_at is not None:
            return
        error = ProxyError("cancelled", "The server is shutting down; the request was stopped.")
        try:
            if exchange.status is None:
                await error_response(error)(scope, _no_receive, send)
                return
            tail = sse_error(error) if exchange.event_stream else b""
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        except OSError:
            pass  # the client is gone too

    def _keep_body(self, exchange: Exchange, chunk: bytes) -> None:
        if exchange.status is not None and exchange.status >= 400:
            exchange.error_body += chunk[: max(0, ERROR_BODY_CAP - len(exchange.error_body))]
        if exchange.response_body is not None:
            room = RESPONSE_BODY_CAP - len(exchange.response_body)
            exchange.response_body += chunk[: max(0, room)]

    async def _finish(self, exchange: Exchange, scope: Scope, state: dict[str, Any]) -> None:
        ended = time.monotonic()
        outcome = state.get("outcome")
        outcome = outcome if isinstance(outcome, Outcome) else None
        status, error_code = self._final_status(exchange, outcome)
        done_at = exchange.completed_at or ended
        duration_s = done_at - exchange.started
        first_byte_s = exchange.first_byte_at - exchange.started if exchange.first_byte_at else None
        try:
            self._count(exchange, scope, state, outcome, status, duration_s, first_byte_s)
        except Exception:
            logger.exception("could not record metrics")
        logger.log(
            "DEBUG" if exchange.path in QUIET_PATHS else "INFO",
            "{} {} {} {}{:.0f}ms key={}",
            exchange.method,
            exchange.path,
            status if status is not None else "-",
            f"{error_code} " if error_code else "",
            duration_s * 1000,
            state.get("key_id") or "-",
        )
        if self.writer is None or (exchange.path in QUIET_PATHS and not self.options.log_probes):
            return
        record = self._record(exchange, state, outcome, status, error_code)
        record["duration_ms"] = round(duration_s * 1000, 1)
        record["time_to_first_byte_ms"] = (
            round(first_byte_s * 1000, 1) if first_byte_s is not None else None
        )
        try:
            await anyio.to_thread.run_sync(self.writer.write, record)
        except Exception:
            logger.exception("could not write the request log")

    def _final_status(
        self, exchange: Exchange, outcome: Outcome | None
    ) -> tuple[int | None, str | None]:
        if exchange.failed:
            return 500, "internal_error"
        if exchange.cancelled:
            return 503, "cancelled"
        if outcome is not None:
            return outcome.status, outcome.error_code
        if exchange.disconnected:
            return 499, "client_disconnected"
        return exchange.status, _error_code(bytes(exchange.error_body))

    def _count(
        self,
        exchange: Exchange,
        scope: Scope,
        state: dict[str, Any],
        outcome: Outcome | None,
        status: int | None,
        duration_s: float,
        first_byte_s: float | None,
    ) -> None:
        template = route_template(scope)
        method = exchange.method if exchange.method in KNOWN_METHODS else "other"
        chat = state.get("chat")
        # Only a model the backend accepted (an Outcome exists) becomes a label: any
        # string a client sends would make the series count unbounded.
        model = str(getattr(chat, "model", "")) if outcome is not None else ""
        self.metrics.requests.labels(template, method, str(status or "none"), model).inc()
        self.metrics.duration.labels(template).observe(duration_s)
        if first_byte_s is not None:
            self.metrics.first_byte.labels(template).observe(first_byte_s)
        if state.get("rate_limited"):
            self.metrics.rate_limited.inc()
        if state.get("auth_failed"):
            self.metrics.auth_failures.inc()
        cli = outcome.record.cli if outcome is not None else None
        exits = self.metrics.cli_exits
        if outcome is not None and cli is not None and cli.exit_code is not None and exits:
            backend = outcome.record.node or self.options.backend
            exits.labels(backend, str(cli.exit_code)).inc()

    def _record(
        self,
        exchange: Exchange,
        state: dict[str, Any],
        outcome: Outcome | None,
        status: int | None,
        error_code: str | None,
    ) -> dict[str, Any]:
        chat = state.get("chat")
        run = outcome.record if outcome is not None else None
        backend = str(state.get("backend_id") or self.options.backend)
        record: dict[str, Any] = {
            "request_id": exchange.request_id,
            "timestamp": iso_utc(exchange.started_wall),
            "method": exchange.method,
            "path": exchange.path,
            "client_ip": exchange.client_ip,
            "key_id": state.get("key_id"),
            "model": clip(chat.model) if chat is not None else None,
            "message_count": len(chat.messages) if chat is not None else None,
            "stream": getattr(chat, "stream", None),
            **run_fields(run, backend),
            "status": status,
            "error_code": error_code,
            "response_complete": exchange.completed_at is not None,
            "time_to_first_byte_ms": None,
            "duration_ms": None,
            "usage": usage_fields(outcome.usage) if outcome is not None else None,
        }
        if exchange.request_body is not None:
            record["request_body"] = exchange.request_body.decode("utf-8", "replace")
        if exchange.response_body is not None:
            record["response_body"] = exchange.response_body.decode("utf-8", "replace")
        return record


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label values), also for requests the
    gate refused before routing."""
    route = scope.get("route")
    if route is None:
        for candidate in getattr(scope.get("app"), "routes", ()):
            match, _ = candidate.matches(scope)
            if match != Match.NONE:
                route = candidate
                break
    return str(getattr(route, "path", "unmatched"))


def _error_code(body: bytes) -> str | None:
    """The ``code`` of an OpenAI error envelope, if ``body`` is one."""
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None
