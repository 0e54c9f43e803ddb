"""Probes leave no request log file unless asked, and a request task cancelled by the
server still gets an answer and one record, without a traceback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anyio
from loguru import logger
from starlette.types import Message, Receive, Scope, Send

from copilot_cli_proxy.config.backends_file import GatewayConfig
from copilot_cli_proxy.gateway.gateway import Gateway
from copilot_cli_proxy.observe.metrics import Metrics
from copilot_cli_proxy.observe.middleware import ObserveMiddleware, ObserveOptions
from copilot_cli_proxy.observe.redact import Redactor
from copilot_cli_proxy.observe.requestlog import RequestLogWriter
from copilot_cli_proxy.settings import Settings
from tests.unit.scripted import chat_body, client, request_logs, scripted_app


async def test_health_and_metrics_leave_no_request_log_by_default(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path, metrics_require_key=False)) as http:
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200
        answer = await http.post("/v1/chat/completions", json=chat_body())
    (path,) = request_logs(tmp_path)
    assert path.stem == answer.headers["x-request-id"]


async def test_log_probes_records_them_too(tmp_path: Path) -> None:
    app = scripted_app(tmp_path, metrics_require_key=False, log_probes=True)
    async with client(app) as http:
        ids = {
            (await http.get("/health")).headers["x-request-id"],
            (await http.get("/metrics")).headers["x-request-id"],
        }
    assert {path.stem for path in request_logs(tmp_path)} == ids


def observed(app: Any, tmp_path: Path) -> ObserveMiddleware:
    writer = RequestLogWriter(tmp_path / "logs" / "requests", 14, Redactor())
    return ObserveMiddleware(
        app,
        metrics=Metrics(Gateway(Settings(), GatewayConfig((), {}, "<test>"), [])),
        writer=writer,
        redactor=Redactor(),
        options=ObserveOptions(backend="test"),
    )


SCOPE: Scope = {
    "type": "http",
    "method": "POST",
    "path": "/v1/chat/completions",
    "headers": [(b"x-request-id", b"stopped-1")],
    "client": ("127.0.0.1", 5000),
}


async def run_until_cancelled(app: Any, tmp_path: Path) -> tuple[list[Message], list[str]]:
    """Run ``app`` as uvicorn does, and cancel its task as uvicorn's stop does.

    uvicorn runs each request in an asyncio task and calls ``task.cancel()`` on those
    still running after its graceful wait: that bare cancellation is what is tested.
    ``app`` takes an event it sets once it is waiting for good.
    """
    sent: list[Message] = []
    waiting = anyio.Event()
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR")

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, send, waiting)

    middleware = observed(inner, tmp_path)
    try:
        task = asyncio.get_running_loop().create_task(middleware(dict(SCOPE), receive, send))
        with anyio.fail_after(5):
            await waiting.wait()
        task.cancel()
        with anyio.fail_after(5):
            await asyncio.wait({task})
        assert not task.cancelled() and task.exception() is None  # ended quietly
    finally:
        logger.remove(sink)
    return sent, errors


async def test_a_cancelled_request_before_its_answer_gets_503_cancelled(tmp_path: Path) -> None:
    async def waits_forever(scope: Scope, send: Send, waiting: anyio.Event) -> None:
        waiting.set()
        await anyio.sleep_forever()

    sent, errors = await run_until_cancelled(waits_forever, tmp_path)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 503
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert json.loads(body)["error"]["code"] == "cancelled"
    assert sent[-1].get("more_body", False) is False
    (path,) = request_logs(tmp_path)
    record = json.loads(path.read_text())
    assert (record["status"], record["error_code"]) == (503, "cancelled")
    assert errors == []


async def test_a_cancelled_stream_ends_with_an_error_event(tmp_path: Path) -> None:
    async def streams_then_waits(scope: Scope, send: Send, waiting: anyio.Event) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'data: {"x":1}\n\n', "more_body": True})
        waiting.set()
        await anyio.sleep_forever()

    sent, errors = await run_until_cancelled(streams_then_waits, tmp_path)
    last = sent[-1]
    assert last["more_body"] is False
    assert last["body"].startswith(b"data: ")
    assert json.loads(last["body"][6:])["error"]["code"] == "cancelled"
    assert errors == []
