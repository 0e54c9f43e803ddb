"""The observing middleware over the real stack: ids, one record per request, metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from prometheus_client.parser import text_string_to_metric_families

from copilot_cli_proxy.backends.base import RunRecord
from copilot_cli_proxy.gate.auth import key_id
from copilot_cli_proxy.settings import RUNNERS
from tests.unit.scripted import (
    BOOM,
    FAIL,
    MODEL,
    SLOW,
    ScriptedBackend,
    chat_body,
    client,
    request_logs,
    scripted_app,
)

KEY = "alpha-key-0001"
AUTH = {"Authorization": f"Bearer {KEY}"}


def records(tmp_path: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in request_logs(tmp_path):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert path.stem == data["request_id"]
        assert path.parent.name == data["timestamp"][:10]
        found[data["request_id"]] = data
    return found


async def test_a_chat_request_leaves_one_complete_record(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path, runner="oneshot", api_key=(KEY,))) as http:
        response = await http.post(
            "/v1/chat/completions",
            json={
                **chat_body("hello"),
                "messages": [{"role": "system", "content": "s"}] + chat_body("hello")["messages"],
            },
            headers={**AUTH, "X-Request-ID": "client-req-1"},
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "client-req-1"
    logged = records(tmp_path)
    assert list(logged) == ["client-req-1"]
    record = logged["client-req-1"]
    assert record["method"] == "POST"
    assert record["path"] == "/v1/chat/completions"
    assert record["client_ip"] == "203.0.113.7"
    assert record["key_id"] == key_id(KEY)
    assert record["model"] == MODEL
    assert record["message_count"] == 2
    assert record["stream"] is False
    assert record["backend"] == "scripted"
    assert (record["node"], record["attempts"]) == ("scripted", 1)
    assert record["runner"] in RUNNERS
    assert record["cli_argv"] == ["scripted", "--prompt=<5 chars>"]
    assert record["temp_dir"] == "/tmp/scripted-run"
    assert record["cli_exit_code"] == 0
    assert record["status"] == 200
    assert record["error_code"] is None
    assert record["response_complete"] is True
    assert record["usage"]["prompt_tokens"] == 3 and record["usage"]["total_tokens"] == 5
    assert 0 <= record["time_to_first_byte_ms"] <= record["duration_ms"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert "request_body" not in record and "response_body" not in record
    assert KEY not in json.dumps(record)
    assert "hello" not in json.dumps(record)  # the prompt is not logged by default


async def test_streamed_answer_is_recorded_as_stream(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path)) as http:
        response = await http.post("/v1/chat/completions", json=chat_body(stream=True))
    assert response.status_code == 200 and "data: [DONE]" in response.text
    (record,) = records(tmp_path).values()
    assert record["stream"] is True and record["status"] == 200
    assert record["key_id"] is None


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"method": "GET", "url": "/v1/models"}, 401, "invalid_api_key"),
        ({"method": "GET", "url": "/nope", "headers": AUTH}, 404, "not_found"),
        ({"method": "PUT", "url": "/v1/models", "headers": AUTH}, 405, "method_not_allowed"),
        (
            {"method": "POST", "url": "/v1/chat/completions", "headers": AUTH, "content": b"{"},
            400,
            "invalid_json",
        ),
        (
            {
                "method": "POST",
                "url": "/v1/chat/completions",
                "headers": AUTH,
                "content": b"\xff\xfe",
            },
            400,
            "invalid_json",
        ),
        (
            {
                "method": "POST",
                "url": "/v1/chat/completions",
                "headers": AUTH,
                "json": chat_body(model="gpt-nope"),
            },
            404,
            "model_not_found",
        ),
        (
            {
                "method": "POST",
                "url": "/v1/chat/completions",
                "headers": AUTH,
                "content": b"x" * 5000,
            },
            413,
            "request_too_large",
        ),
        (
            {
                "method": "POST",
                "url": "/v1/chat/completions",
                "headers": AUTH,
                "json": chat_body(FAIL),
            },
            502,
            "cli_failed",
        ),
    ],
)
async def test_every_refusal_and_failure_is_recorded_once_with_its_code(
    tmp_path: Path, kwargs: dict[str, Any], status: int, code: str
) -> None:
    app = scripted_app(tmp_path, api_key=(KEY,), max_body_bytes=4096)
    async with client(app) as http:
        response = await http.request(**kwargs)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    logged = records(tmp_path)
    assert list(logged) == [response.headers["x-request-id"]]
    assert logged[response.headers["x-request-id"]]["status"] == status
    assert logged[response.headers["x-request-id"]]["error_code"] == code


async def test_a_failed_cli_run_keeps_its_exit_code_and_stderr(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path, runner="oneshot")) as http:
        await http.post("/v1/chat/completions", json=chat_body(FAIL))
    (record,) = records(tmp_path).values()
    assert record["cli_exit_code"] == 3
    assert record["cli_stderr_tail"] == "scripted failure"


async def test_timeout_is_recorded_as_504(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path, request_timeout=1000)) as http:
        response = await http.post("/v1/chat/completions", json=chat_body(SLOW))
    assert response.status_code == 504
    (record,) = records(tmp_path).values()
    assert (record["status"], record["error_code"]) == (504, "timeout")
    assert record["duration_ms"] >= 1000


async def test_a_bug_outside_the_chat_answer_is_a_500_envelope_with_an_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy(self: ScriptedBackend, request: object) -> None:
        raise RuntimeError("bug in a check")

    monkeypatch.setattr(ScriptedBackend, "check_request", buggy)
    async with client(scripted_app(tmp_path)) as http:
        response = await http.post("/v1/chat/completions", json=chat_body())
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "internal_error"
        assert response.headers["x-request-id"]
        assert (await http.get("/health")).status_code == 200
    logged = records(tmp_path)
    assert logged[response.headers["x-request-id"]]["status"] == 500
    assert logged[response.headers["x-request-id"]]["error_code"] == "internal_error"


async def test_a_bug_in_the_backend_stream_is_a_500_recorded_once(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path)) as http:
        response = await http.post("/v1/chat/completions", json=chat_body(BOOM))
    assert response.status_code == 500
    (record,) = records(tmp_path).values()
    assert (record["status"], record["error_code"]) == (500, "internal_error")


async def test_bodies_are_logged_only_when_asked(tmp_path: Path) -> None:
    app = scripted_app(tmp_path, log_request_body=True, log_response_body=True)
    async with client(app) as http:
        await http.post("/v1/chat/completions", json=chat_body("body please"))
    (record,) = records(tmp_path).values()
    assert json.loads(record["request_body"])["messages"][0]["content"] == "body please"
    assert json.loads(record["response_body"])["choices"][0]["message"]["content"] == (
        "echo: body please"
    )


async def test_request_logs_can_be_turned_off(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path, log_requests=False)) as http:
        assert (await http.post("/v1/chat/completions", json=chat_body())).status_code == 200
    assert not (tmp_path / "logs" / "requests").exists()


async def test_many_requests_many_records_each_id_distinct(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path)) as http:
        ids = [(await http.get("/v1/models")).headers["x-request-id"] for _ in range(20)]
        ids.append(
            (await http.post("/v1/chat/completions", json=chat_body())).headers["x-request-id"]
        )
    assert len(set(ids)) == 21
    assert set(records(tmp_path)) == set(ids)


@pytest.fixture
def captured() -> Iterator[list[tuple[str, str]]]:
    lines: list[tuple[str, str]] = []
    sink = logger.add(
        lambda message: lines.append(
            (message.record["extra"].get("request_id", "-"), message.record["message"])
        ),
        level="DEBUG",
    )
    try:
        yield lines
    finally:
        logger.remove(sink)


async def test_every_log_line_of_a_request_carries_its_id(
    tmp_path: Path, captured: list[tuple[str, str]]
) -> None:
    async with client(scripted_app(tmp_path)) as http:
        await http.post(
            "/v1/chat/completions", json=chat_body(), headers={"X-Request-ID": "trace-me"}
        )
    mine = [message for rid, message in captured if rid == "trace-me"]
    assert any(message.startswith("chat chatcmpl-") for message in mine)  # the route's line
    assert any(message.startswith("POST /v1/chat/completions 200") for message in mine)
    assert all(rid == "trace-me" for rid, message in captured if "chatcmpl-" in message)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` whose labels include ``labels``."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and labels.items() <= found.labels.items():
                return float(found.value)
    return None


async def test_metrics_count_requests_by_route_status_and_model(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path, runner="oneshot", api_key=(KEY,))) as http:
        await http.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
        await http.post("/v1/chat/completions", json=chat_body(stream=True), headers=AUTH)
        await http.post("/v1/chat/completions", json=chat_body(FAIL), headers=AUTH)
        await http.post("/v1/chat/completions", json=chat_body(model="made-up"), headers=AUTH)
        await http.get("/v1/models/scripted-1", headers=AUTH)
        await http.get("/v1/models")
        response = await http.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    requests = "copilot_cli_proxy_requests_total"
    chat = {"route": "/v1/chat/completions", "method": "POST"}
    assert sample(text, requests, **chat, status="200", model=MODEL) == 2
    assert sample(text, requests, **chat, status="502", model=MODEL) == 1
    # An unknown model is not a label value: clients cannot grow the series count.
    assert sample(text, requests, **chat, status="404", model="") == 1
    assert sample(text, requests, **chat, model="made-up") is None
    assert sample(text, requests, route="/v1/models/{model_id:path}", status="200") == 1
    assert sample(text, requests, route="/v1/models", status="401") == 1
    assert sample(text, "copilot_cli_proxy_auth_failures_total") == 1
    assert sample(text, "copilot_cli_proxy_cli_exit_codes_total", code="0") == 2
    assert sample(text, "copilot_cli_proxy_cli_exit_codes_total", code="3") == 1
    duration = "copilot_cli_proxy_request_duration_seconds_count"
    assert sample(text, duration, route="/v1/chat/completions") == 4
    first_byte = "copilot_cli_proxy_time_to_first_byte_seconds_count"
    assert sample(text, first_byte, route="/v1/chat/completions") == 4
    assert sample(text, "copilot_cli_proxy_cli_processes_active") == 0
    assert sample(text, "copilot_cli_proxy_queue_depth") == 0
    assert sample(text, "copilot_cli_proxy_rate_limit_rejections_total") == 0


async def test_unknown_methods_do_not_grow_the_label_set(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path)) as http:
        for verb in ("BREW", "WHEN", "PROPFIND"):
            await http.request(verb, "/v1/models")
        text = (await http.get("/metrics")).text
    assert sample(text, "copilot_cli_proxy_requests_total", method="other", status="405") == 3
    assert "BREW" not in text


def test_run_record_default_is_empty() -> None:
    # The record only holds CLI details when there was a CLI run.
    assert RunRecord().cli is None and RunRecord().attempts == 0
    assert RunRecord().cli_run().argv == [] and RunRecord().cli_run().exit_code is None


async def test_a_backend_without_a_cli_leaves_no_cli_fields_or_series(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path)) as http:
        await http.post("/v1/chat/completions", json=chat_body())
        await http.post("/v1/chat/completions", json=chat_body(FAIL))
        text = (await http.get("/metrics")).text
    logged = list(records(tmp_path).values())
    assert sorted(r["status"] for r in logged if r["path"] == "/v1/chat/completions") == [200, 502]
    for record in logged:
        assert not [k for k in record if k.startswith("cli_") or k in ("runner", "temp_dir")]
    chat = next(r for r in logged if r["status"] == 200)
    assert (chat["backend"], chat["node"], chat["attempts"]) == ("scripted", "scripted", 1)
    assert "copilot_cli_proxy_cli_" not in text
    assert sample(text, "copilot_cli_proxy_backend_slots_active", backend="scripted") == 0


async def test_cors_preflight_is_answered_without_a_key(tmp_path: Path) -> None:
    app = scripted_app(tmp_path, api_key=(KEY,), cors_origins=("https://app.example",))
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
    }
    async with client(app) as http:
        response = await http.options("/v1/chat/completions", headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-stainless-os" in response.headers["access-control-allow-headers"].lower()
        actual = await http.post(
            "/v1/chat/completions",
            json=chat_body(),
            headers={**AUTH, "Origin": "https://app.example"},
        )
        assert actual.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in actual.headers["access-control-expose-headers"].lower()
        other = await http.post(
            "/v1/chat/completions",
            json=chat_body(),
            headers={**AUTH, "Origin": "https://evil.example"},
        )
        assert "access-control-allow-origin" not in other.headers


async def test_no_cors_by_default(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path)) as http:
        response = await http.get("/v1/models", headers={"Origin": "https://app.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_configured_keys_are_redacted_from_request_records(tmp_path: Path) -> None:
    app = scripted_app(tmp_path, api_key=(KEY,), log_request_body=True, log_response_body=True)
    async with client(app) as http:
        await http.post(
            f"/v1/chat/completions?k={KEY}", json=chat_body(f"my key is {KEY}"), headers=AUTH
        )
        await http.get(f"/v1/models/{KEY}", headers=AUTH)
    texts = [path.read_text() for path in request_logs(tmp_path)]
    assert len(texts) == 2
    assert all(KEY not in text for text in texts)
    assert all("[REDACTED]" in text for text in texts)
