"""Request logs, log files and metrics of the real server: one record per request
whatever happened, the request id everywhere, and no secret in any file."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import ProxyServer, ask, fake_env, start_server, wait_until

KEY = "alpha-key-0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
GH_TOKEN = "github_pat_" + "S3cr3tT0k3n" * 3  # copilot refuses a classic ghp_ token
CLAUDE_TOKEN = "sk-ant-oat01-" + "Q" * 24


def log_dir(proxy: ProxyServer) -> Path:
    return proxy.temp_base.parent / "logs"


def records(proxy: ProxyServer) -> dict[str, list[dict[str, Any]]]:
    """Request id → its records (a list, so a duplicate would show)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((log_dir(proxy) / "requests").glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        found.setdefault(data["request_id"], []).append(data)
    return found


def record_of(proxy: ProxyServer, request_id: str, timeout: float = 10) -> dict[str, Any]:
    """The record of a request, once written, and the check that it is the only one.

    Each record is written right after the request's one summary line
    ("POST /path 200 12ms key=…"); one record and one summary line is what a request
    leaves. That nothing more is written later is proven in-process, where the end of
    a request is known (tests/unit/observe/test_middleware.py), not by waiting here.
    """
    assert wait_until(lambda: request_id in records(proxy), timeout), f"no record {request_id}"
    summaries = [
        line
        for line in proxy.log().splitlines()
        if f"| {request_id} | " in line and " key=" in line
    ]
    assert len(summaries) == 1, summaries
    (record,) = records(proxy)[request_id]
    return record


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    env = fake_env("copilot", API_KEY=KEY, REQUEST_TIMEOUT="3000", GH_TOKEN=GH_TOKEN)
    server = start_server(tmp_path_factory.mktemp("observe"), env)
    try:
        yield server
    finally:
        server.stop()


def test_a_completion_leaves_one_full_record(proxy: ProxyServer) -> None:
    client = proxy.client(api_key=KEY)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-5-mini",
        messages=[{"role": "system", "content": "Be brief."}, *ask("private prompt text")],
        extra_headers={"X-Request-ID": "e2e-complete-1"},
    )
    assert raw.headers["x-request-id"] == "e2e-complete-1"
    record = record_of(proxy, "e2e-complete-1")
    assert record["method"] == "POST" and record["path"] == "/v1/chat/completions"
    assert record["client_ip"] == "127.0.0.1"
    assert record["key_id"].startswith("key_") and KEY not in json.dumps(record)
    assert record["model"] == "gpt-5-mini"
    assert record["message_count"] == 2
    assert record["stream"] is False
    assert record["backend"] == "copilot"
    assert any(arg.startswith("--prompt=<") for arg in record["cli_argv"])
    assert "private prompt text" not in json.dumps(record)
    assert record["temp_dir"].startswith(str(proxy.temp_base))
    assert record["cli_exit_code"] == 0
    assert (record["status"], record["error_code"]) == (200, None)
    assert record["usage"]["prompt_tokens"] > 0 and record["usage"]["completion_tokens"] > 0
    assert 0 < record["time_to_first_byte_ms"] <= record["duration_ms"]
    assert "request_body" not in record and "response_body" not in record


def test_a_stream_is_recorded_with_its_usage(proxy: ProxyServer) -> None:
    client = proxy.client(api_key=KEY)
    chunks = list(
        client.chat.completions.create(
            model="gpt-5-mini",
            messages=ask("stream me"),
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"X-Request-ID": "e2e-stream-1"},
        )
    )
    assert chunks
    record = record_of(proxy, "e2e-stream-1")
    assert record["stream"] is True and record["status"] == 200
    assert record["usage"]["total_tokens"] > 0


def test_refusals_are_recorded_with_their_codes(proxy: ProxyServer) -> None:
    with proxy.http() as http:
        cases = [
            (http.get("/v1/models", headers={"X-Request-ID": "e2e-401"}), 401, "invalid_api_key"),
            (http.get("/nowhere", headers={**AUTH, "X-Request-ID": "e2e-404"}), 404, "not_found"),
            (
                http.post(
                    "/v1/chat/completions",
                    content=b"{oops",
                    headers={**AUTH, "X-Request-ID": "e2e-400"},
                ),
                400,
                "invalid_json",
            ),
        ]
    for response, status, code in cases:
        record = record_of(proxy, response.headers["x-request-id"])
        assert (record["status"], record["error_code"]) == (status, code)


def test_client_disconnect_mid_stream_is_one_499_record(proxy: ProxyServer) -> None:
    body = {"messages": ask("FAKE_DELTA_DELAY=0.3\nFAKE_BIG=400\nx"), "stream": True}
    headers = {**AUTH, "X-Request-ID": "e2e-gone-1"}
    with (
        proxy.http() as http,
        http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        for _ in response.iter_raw():
            break
    record = record_of(proxy, "e2e-gone-1", timeout=15)
    assert (record["status"], record["error_code"]) == (499, "client_disconnected")
    assert record["response_complete"] is False
    assert record["time_to_first_byte_ms"] is not None


def test_timeout_is_one_504_record(proxy: ProxyServer) -> None:
    with proxy.http() as http:
        response = http.post(
            "/v1/chat/completions",
            json={"messages": ask("FAKE_SLEEP=30\nhi")},
            headers={**AUTH, "X-Request-ID": "e2e-timeout-1"},
        )
    assert response.status_code == 504
    record = record_of(proxy, "e2e-timeout-1")
    assert (record["status"], record["error_code"]) == (504, "timeout")
    assert record["duration_ms"] >= 3000
    assert record["cli_argv"] and record["temp_dir"]


def test_every_log_line_of_a_request_carries_its_id(proxy: ProxyServer) -> None:
    proxy.client(api_key=KEY).chat.completions.create(
        model="gpt-5-mini", messages=ask("trace"), extra_headers={"X-Request-ID": "e2e-trace-1"}
    )
    record_of(proxy, "e2e-trace-1")
    combined = log_dir(proxy) / "combined.log"

    def lines() -> list[str]:
        return [line for line in combined.read_text().splitlines() if "e2e-trace-1" in line]

    assert wait_until(lambda: len(lines()) >= 2, 5)
    assert any("chat chatcmpl-" in line for line in lines())
    assert any("POST /v1/chat/completions 200" in line for line in lines())
    chat_id = (
        next(line for line in lines() if "chat chatcmpl-" in line).split("chat ")[1].split()[0]
    )
    # Any line naming this answer belongs to the request and carries its id.
    assert all(
        "| e2e-trace-1 |" in line for line in combined.read_text().splitlines() if chat_id in line
    )
    assert (log_dir(proxy) / "error.log").exists()


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and labels.items() <= found.labels.items():
                return float(found.value)
    return None


def test_metrics_after_real_cli_runs(proxy: ProxyServer) -> None:
    client = proxy.client(api_key=KEY)
    client.chat.completions.create(model="gpt-5-mini", messages=ask("count me"))
    # A run keeps its slot until its CLI has exited and its temp dir is gone, which is
    # done just after the answer is sent (so as not to delay it): the gauges settle then.
    with proxy.http() as http:

        def settled() -> str | None:
            text = http.get("/metrics", headers=AUTH).text
            idle = sample(text, "copilot_cli_proxy_cli_processes_active") == 0
            return text if idle else None

        assert wait_until(lambda: settled() is not None, 10)
        text = settled() or ""
    chat = {"route": "/v1/chat/completions", "method": "POST"}
    assert (
        sample(text, "copilot_cli_proxy_requests_total", **chat, status="200", model="gpt-5-mini")
        or 0
    ) >= 1
    assert (sample(text, "copilot_cli_proxy_cli_exit_codes_total", code="0") or 0) >= 1
    ttfb = "copilot_cli_proxy_time_to_first_byte_seconds_count"
    assert (sample(text, ttfb, route="/v1/chat/completions") or 0) >= 1
    assert sample(text, "copilot_cli_proxy_cli_processes_active") == 0
    assert sample(text, "copilot_cli_proxy_queue_depth") == 0


def test_old_day_folders_go_and_recent_ones_stay(tmp_path: Path) -> None:
    requests_dir = tmp_path / "logs" / "requests"
    today = datetime.now(UTC).date()
    old = requests_dir / (today - timedelta(days=10)).isoformat()
    recent = requests_dir / (today - timedelta(days=2)).isoformat()
    for folder in (old, recent):
        folder.mkdir(parents=True)
        (folder / "x.json").write_text("{}")
    server = start_server(tmp_path, fake_env("copilot", LOG_RETENTION_DAYS="5"))
    try:
        assert wait_until(lambda: not old.exists(), 5)
        assert recent.exists()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("service", "runner"),
    [("copilot", "oneshot"), ("copilot", "persistent"), ("claude", "persistent")],
)
def test_shutdown_mid_request_answers_503_cancelled_and_writes_the_record(
    tmp_path: Path, service: str, runner: str
) -> None:
    server = start_server(tmp_path, fake_env(service, MAX_CONCURRENT="2", RUNNER=runner))
    answers: dict[str, httpx.Response | str] = {}

    def slow_request(request_id: str, stream: bool) -> None:
        body = {"messages": ask("FAKE_REPLY=first words\nFAKE_DELTA_DELAY=20"), "stream": stream}
        try:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                response = http.post(
                    "/v1/chat/completions", json=body, headers={"X-Request-ID": request_id}
                )
                answers[request_id] = response
        except httpx.HTTPError as exc:
            answers[request_id] = repr(exc)

    workers = [
        threading.Thread(target=slow_request, args=("e2e-shutdown-1", False)),
        threading.Thread(target=slow_request, args=("e2e-shutdown-stream", True)),
    ]
    for worker in workers:
        worker.start()
    try:
        # Both answers are under way once both hold a CLI slot.
        def active() -> int:
            return int(httpx.get(server.url + "/health", timeout=5).json()["processes"]["active"])

        assert wait_until(lambda: active() == 2, 15)
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(40)
        for worker in workers:
            worker.join(30)
        plain, streamed = answers["e2e-shutdown-1"], answers["e2e-shutdown-stream"]
        assert isinstance(plain, httpx.Response) and isinstance(streamed, httpx.Response)
        assert plain.status_code == 503
        assert plain.json()["error"]["code"] == "cancelled"
        # The stream had begun: it ends with an error event, not a fake finish.
        events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
        assert streamed.status_code == 200 and len(events) >= 2
        assert json.loads(events[-1])["error"]["code"] == "cancelled"
        assert "[DONE]" not in events
        for request_id in ("e2e-shutdown-1", "e2e-shutdown-stream"):
            found = records(server).get(request_id, [])
            assert len(found) == 1, found
            assert (found[0]["status"], found[0]["error_code"]) == (503, "cancelled")
        log = server.log()
        assert "Traceback" not in log and "CancelledError" not in log, log
        assert "Exception in ASGI application" not in log
        server.assert_clean()
    finally:
        server.stop()


def test_no_secret_reaches_any_log(tmp_path: Path) -> None:
    other = "beta-key-0002"
    env = fake_env(
        "copilot",
        API_KEY=f"{KEY},{other}",
        GH_TOKEN=GH_TOKEN,
        COPILOT_GITHUB_TOKEN=GH_TOKEN,
        CLAUDE_CODE_OAUTH_TOKEN=CLAUDE_TOKEN,
        LOG_REQUEST_BODY="true",
        LOG_RESPONSE_BODY="true",
        LOG_LEVEL="TRACE",
    )
    server = start_server(tmp_path, env)
    try:
        client = server.client(api_key=KEY)
        client.chat.completions.create(model="gpt-5-mini", messages=ask(f"echo {KEY}"))
        list(
            server.client(api_key=other).chat.completions.create(
                model="gpt-5-mini", messages=ask(f"token {GH_TOKEN}"), stream=True
            )
        )
        with server.http() as http:
            http.get("/v1/models", headers={"x-api-key": KEY})
            http.get("/v1/models", headers={"x-api-key": other, "X-Request-ID": KEY})
            http.get(f"/v1/models/{KEY}", headers={"Authorization": f"Bearer {KEY}"})
            http.get(f"/{GH_TOKEN}?api_key={KEY}", headers={"x-api-key": KEY})
            http.get("/v1/models", headers={"Authorization": f"Bearer {KEY}x"})
            http.post(
                "/v1/chat/completions",
                content=json.dumps({"api_key": KEY, "messages": ask(CLAUDE_TOKEN)}).encode(),
                headers={"x-api-key": other},
            )
            http.post("/v1/chat/completions", content=f"not json {KEY}".encode(), headers=AUTH)
        assert wait_until(lambda: len([r for r in records(server) if r]) >= 9, 10)
    finally:
        server.stop()  # flushes the queued file sinks
    files = [p for p in (tmp_path / "logs").rglob("*") if p.is_file()] + [server.log_path]
    assert len(files) >= 12
    leaks = {
        str(path): secret
        for path in files
        for secret in (KEY, other, GH_TOKEN, CLAUDE_TOKEN)
        if secret in path.read_text(errors="replace")
    }
    assert leaks == {}
    everything = "".join(path.read_text(errors="replace") for path in files)
    assert "[REDACTED]" in everything  # the secrets were there to leak, and were caught
