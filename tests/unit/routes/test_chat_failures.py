"""How the chat route answers what goes wrong on the server's side: OS errors, time
limits, a full queue, a stop. Each answer is an OpenAI envelope (or a final SSE error
event), and the request log and metrics record the status the client really got."""

from __future__ import annotations

import errno
import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.types import Message

from copilot_cli_proxy.app import create_app
from copilot_cli_proxy.backends.base import BackendEvent, RunRecord, TextDelta
from copilot_cli_proxy.protocol.requests import ChatRequest
from copilot_cli_proxy.routes.common import Services
from tests.unit.scripted import (
    SLOW,
    ScriptedBackend,
    chat_body,
    client,
    request_logs,
    scripted_settings,
)

DISK_FULL = "<<test:enospc>>"
OWN_TIMEOUT = "<<test:own-timeout>>"
TEXT_THEN_WAIT = "<<test:text-then-wait>>"


class FailingBackend(ScriptedBackend):
    """The scripted backend, plus failures that happen inside a real backend."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.texting = anyio.Event()

    async def stream(  # type: ignore[override]
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        text = request.messages[-1].content
        if DISK_FULL in text:
            # What writing the system-prompt file into the request dir does on a full disk.
            raise OSError(errno.ENOSPC, "No space left on device", "/tmp/req-x/system.md")
        if OWN_TIMEOUT in text:
            with anyio.fail_after(0.01):  # a limit of the backend's own (an RPC deadline)
                await anyio.sleep(5)
        if TEXT_THEN_WAIT in text:
            yield TextDelta("partial ")
            self.texting.set()
            await anyio.sleep(30)
        async for event in super().stream(request, record):
            yield event


def failing_app(tmp_path: Path, **overrides: Any) -> tuple[Starlette, FailingBackend]:
    settings = scripted_settings(tmp_path, **overrides)
    backend = FailingBackend(settings)
    return create_app(settings, backend), backend


def services(app: Starlette) -> Services:
    svc: Services = app.state.services
    return svc


def only_record(tmp_path: Path) -> dict[str, Any]:
    (path,) = request_logs(tmp_path)
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def requests_counted(app: Starlette, status: str) -> float:
    text = app.state.metrics.render().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "copilot_cli_proxy_requests_total"
                and sample.labels.get("status") == status
            ):
                return float(sample.value)
    return 0.0


async def test_a_full_disk_in_the_backend_is_a_503_envelope_not_a_client_gone(
    tmp_path: Path,
) -> None:
    app, _ = failing_app(tmp_path)
    async with client(app) as http:
        response = await http.post("/v1/chat/completions", json=chat_body(DISK_FULL))
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "server_unavailable"
    assert "No space left on device" in error["message"]
    assert "/tmp/req-x" not in error["message"]  # the server's paths stay in its log
    record = only_record(tmp_path)
    assert (record["status"], record["error_code"]) == (503, "server_unavailable")
    assert requests_counted(app, "503") == 1
    assert requests_counted(app, "200") == 0


async def call_app(app: Starlette, body: dict[str, Any], send_error: OSError) -> list[Message]:
    """One request straight through ASGI, with a client socket that fails on the body."""
    sent: list[Message] = []
    raw = json.dumps(body).encode()
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            raise send_error

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"proxy.test")],
        "client": ("203.0.113.7", 40000),
        "server": ("proxy.test", 80),
    }
    with anyio.fail_after(10):
        await app(scope, receive, send)
    return sent


async def test_an_error_writing_to_the_client_is_the_client_gone(tmp_path: Path) -> None:
    app, _ = failing_app(tmp_path)
    sent = await call_app(app, chat_body("hello"), ConnectionResetError(errno.ECONNRESET, "reset"))
    assert sent[0]["type"] == "http.response.start"
    record = only_record(tmp_path)
    assert (record["status"], record["error_code"]) == (499, "client_disconnected")


async def test_a_queued_request_past_request_timeout_is_told_no_slot_freed_up(
    tmp_path: Path,
) -> None:
    app, backend = failing_app(tmp_path, max_concurrent=1, request_timeout=300)
    async with client(app) as http, services(app).limiter.slot():
        # Every slot is taken for longer than REQUEST_TIMEOUT; the request only waits.
        response = await http.post("/v1/chat/completions", json=chat_body("queued"))
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "server_busy"
    assert "no CLI slot" in error["message"] and "REQUEST_TIMEOUT (0.3 s)" in error["message"]
    assert "did not finish" not in error["message"]
    assert int(response.headers["retry-after"]) >= 1
    assert backend.runs == 0


async def test_request_timeout_while_the_cli_runs_cites_request_timeout(tmp_path: Path) -> None:
    app, _ = failing_app(tmp_path, request_timeout=300)
    async with client(app) as http:
        response = await http.post("/v1/chat/completions", json=chat_body(SLOW))
    assert response.status_code == 504
    message = response.json()["error"]["message"]
    assert "did not finish within REQUEST_TIMEOUT (0.3 s)" in message


async def test_a_backend_time_limit_is_not_reported_as_request_timeout(tmp_path: Path) -> None:
    app, _ = failing_app(tmp_path)
    async with client(app) as http:
        response = await http.post("/v1/chat/completions", json=chat_body(OWN_TIMEOUT))
    assert response.status_code == 504
    message = response.json()["error"]["message"]
    assert "not REQUEST_TIMEOUT" in message and "300 s" not in message


async def test_a_stop_answers_a_waiting_request_with_503_cancelled(tmp_path: Path) -> None:
    app, _ = failing_app(tmp_path)
    result: dict[str, httpx.Response] = {}
    async with client(app) as http, anyio.create_task_group() as tg:

        async def ask() -> None:
            result["response"] = await http.post("/v1/chat/completions", json=chat_body(SLOW))

        tg.start_soon(ask)
        with anyio.fail_after(10):
            while services(app).limiter.active == 0:
                await anyio.sleep(0.01)
        assert services(app).in_flight.stop_all() == 1
    response = result["response"]
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "cancelled"
    record = only_record(tmp_path)
    assert (record["status"], record["error_code"]) == (503, "cancelled")
    assert services(app).limiter.active == 0


async def test_a_stop_ends_a_stream_with_an_error_event(tmp_path: Path) -> None:
    app, backend = failing_app(tmp_path)
    result: dict[str, httpx.Response] = {}
    async with client(app) as http, anyio.create_task_group() as tg:

        async def ask() -> None:
            body = chat_body(TEXT_THEN_WAIT, stream=True)
            result["response"] = await http.post("/v1/chat/completions", json=body)

        tg.start_soon(ask)
        with anyio.fail_after(10):
            await backend.texting.wait()
        services(app).in_flight.stop_all()
    response = result["response"]
    assert response.status_code == 200
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert "partial " in events[1]
    assert json.loads(events[-1])["error"]["code"] == "cancelled"
    assert "[DONE]" not in events and '"finish_reason":"stop"' not in response.text
    record = only_record(tmp_path)
    assert (record["status"], record["error_code"]) == (503, "cancelled")


async def test_a_request_arriving_while_stopping_is_cancelled_at_once(tmp_path: Path) -> None:
    app, backend = failing_app(tmp_path)
    services(app).in_flight.stop_all()
    async with client(app) as http:
        response = await http.post("/v1/chat/completions", json=chat_body("late"))
    assert response.status_code == 503 and response.json()["error"]["code"] == "cancelled"
    assert backend.runs == 0
