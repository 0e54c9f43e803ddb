"""API keys end to end: the real server, the official SDK, and the start-up refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.harness import ROOT, ProxyServer, ask, fake_env, start_server

KEYS = "alpha-key-0001,beta-key-0002"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    # Wrong keys are sent on purpose, many times: the throttle has its own test below.
    env = fake_env("copilot", API_KEY=KEYS, AUTH_FAILURE_MAX="0")
    proxy = start_server(tmp_path_factory.mktemp("keyed"), env)
    try:
        yield proxy
    finally:
        proxy.stop()


def test_health_is_open_and_models_need_the_key(keyed: ProxyServer) -> None:
    with keyed.http() as http:
        assert http.get("/health").status_code == 200
        refused = http.get("/v1/models")
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "authentication_error"
        assert refused.json()["error"]["code"] == "invalid_api_key"
        assert refused.headers["x-request-id"]
        models = http.get("/v1/models", headers={"x-api-key": "beta-key-0002"})
        assert models.status_code == 200 and models.json()["data"]


def test_sdk_with_a_key_streams_and_completes(keyed: ProxyServer) -> None:
    client = keyed.client(api_key="alpha-key-0001")
    completion = client.chat.completions.create(model="gpt-5-mini", messages=ask("hi there"))
    assert completion.choices[0].message.content == "echo: hi there"
    chunks = client.chat.completions.create(
        model="gpt-5-mini", messages=ask("streamed"), stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: streamed"


def test_sdk_with_a_wrong_key_gets_authentication_error(keyed: ProxyServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        keyed.client(api_key="gamma-key-0003").models.list()
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "invalid_api_key"  # type: ignore[index]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "alpha-key-0001"},
        {"Authorization": "Basic YWxwaGEta2V5LTAwMDE6"},
        {"Authorization": "Bearer alpha-key-000"},
        {"Authorization": "Bearer alpha-key-0001x"},
        {"x-api-key": "alpha-key-0001,beta-key-0002"},
        {"Cookie": "api_key=alpha-key-0001"},
        {"X-Request-ID": "alpha-key-0001"},
    ],
)
def test_odd_or_wrong_credentials_are_refused(keyed: ProxyServer, headers: dict[str, str]) -> None:
    with keyed.http() as http:
        response = http.post(
            "/v1/chat/completions?api_key=alpha-key-0001",
            json={"messages": ask("hi"), "api_key": "alpha-key-0001"},
            headers=headers,
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_metrics_need_the_key(keyed: ProxyServer) -> None:
    with keyed.http() as http:
        assert http.get("/metrics").status_code == 401
        metrics = http.get("/metrics", headers={"Authorization": "Bearer alpha-key-0001"})
    assert metrics.status_code == 200
    assert "copilot_cli_proxy_auth_failures_total" in metrics.text


def run_cli(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "HOST")}
    return subprocess.run(
        [sys.executable, "-m", "copilot_cli_proxy", "--port", "0"],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(ROOT), "LOG_DIR": str(tmp_path / "logs"), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_start_up_refuses_a_network_host_without_a_key(tmp_path: Path, host: str) -> None:
    result = run_cli(tmp_path, HOST=host)
    assert result.returncode == 2
    assert f"HOST={host}" in result.stderr and "API_KEY" in result.stderr
    assert "anyone on the network could use your Copilot seat" in result.stderr


def test_start_up_refusal_also_reads_dot_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HOST=0.0.0.0\n")
    result = run_cli(tmp_path)
    assert result.returncode == 2 and "API_KEY" in result.stderr


def test_loopback_without_a_key_serves(tmp_path: Path) -> None:
    proxy = start_server(tmp_path, fake_env("copilot", HOST="127.0.0.1"))
    try:
        assert httpx.get(proxy.url + "/v1/models", timeout=10).status_code == 200
    finally:
        proxy.stop()


def test_failed_keys_are_throttled_per_address(tmp_path: Path) -> None:
    env = fake_env("copilot", API_KEY=KEYS, AUTH_FAILURE_MAX="3", AUTH_FAILURE_WINDOW="60000")
    proxy = start_server(tmp_path, env)
    right = {"Authorization": "Bearer alpha-key-0001"}
    try:
        with proxy.http() as http:
            wrong = [http.get("/v1/models", headers={"x-api-key": f"guess-{n}"}) for n in range(5)]
            assert [r.status_code for r in wrong] == [401, 401, 401, 429, 429]
            error = wrong[3].json()["error"]
            assert error["code"] == "too_many_auth_failures"
            assert error["type"] == "rate_limit_error"
            assert 1 <= int(wrong[3].headers["retry-after"]) <= 60
            # While throttled, even the right key is refused: a guess cannot be confirmed.
            assert http.get("/v1/models", headers=right).status_code == 429
            assert http.get("/health").status_code == 200  # open paths are not gated
        # Another address (all of 127/8 is loopback) is not held back by this one.
        other = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=proxy.url, transport=other, timeout=10) as http:
            assert http.get("/v1/models", headers=right).status_code == 200
    finally:
        proxy.stop()
