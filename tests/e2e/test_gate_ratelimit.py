"""The rate limit end to end: per process in memory, and shared through a real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.harness import ProxyServer, fake_env, free_port, start_server, wait_until
from tests.e2e.redis_server import redis_command, running_redis

KEY = "alpha-key-0001"
OTHER = "beta-key-0002"


def models(proxy: ProxyServer, key: str = KEY) -> httpx.Response:
    return httpx.get(proxy.url + "/v1/models", headers={"x-api-key": key}, timeout=10)


def test_memory_limit_gives_the_sdk_a_rate_limit_error(tmp_path: Path) -> None:
    env = fake_env(
        "copilot", API_KEY=f"{KEY},{OTHER}", RATE_LIMIT_MAX="3", RATE_LIMIT_WINDOW="60000"
    )
    proxy = start_server(tmp_path, env)
    try:
        client = proxy.client(api_key=KEY)
        for expected_remaining in ("2", "1", "0"):
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}]
            )
            assert raw.headers["x-ratelimit-limit"] == "3"
            assert raw.headers["x-ratelimit-remaining"] == expected_remaining
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(
                model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}]
            )
        assert caught.value.status_code == 429
        assert caught.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
        assert caught.value.body["type"] == "rate_limit_error"  # type: ignore[index]
        assert 1 <= int(caught.value.response.headers["retry-after"]) <= 60
        assert models(proxy, OTHER).status_code == 200  # another key, another bucket
        assert httpx.get(proxy.url + "/health", timeout=10).status_code == 200
        metrics = httpx.get(proxy.url + "/metrics", headers={"x-api-key": OTHER}, timeout=10)
        assert "copilot_cli_proxy_rate_limit_rejections_total 1.0" in metrics.text
    finally:
        proxy.stop()


def test_two_servers_share_one_limit_through_redis(tmp_path: Path) -> None:
    with running_redis(tmp_path / "redis") as port:
        env = fake_env(
            "copilot",
            API_KEY=f"{KEY},{OTHER}",
            RATE_LIMIT_MAX="5",
            RATE_LIMIT_WINDOW="60000",
            RATE_LIMIT_STORAGE_URI=f"redis://127.0.0.1:{port}/0",
        )
        servers: list[ProxyServer] = []
        try:
            for name in ("a", "b"):
                (tmp_path / name).mkdir()
                servers.append(start_server(tmp_path / name, env))
            first, second = servers
            sequence = [first, second, first, second, first, second, first]
            answers = [models(proxy) for proxy in sequence]
            statuses = [a.status_code for a in answers]
            remaining = [a.headers.get("x-ratelimit-remaining") for a in answers]
            # Five requests in all, spread over both servers, then both refuse.
            assert statuses == [200, 200, 200, 200, 200, 429, 429]
            assert remaining == ["4", "3", "2", "1", "0", "0", "0"]
            assert answers[5].json()["error"]["code"] == "rate_limit_exceeded"
            assert int(answers[5].headers["retry-after"]) >= 1
            # The other key's bucket is untouched on both servers.
            assert models(first, OTHER).status_code == 200
            assert models(second, OTHER).status_code == 200
            keys = redis_command(port, "KEYS", "*")
            assert b"copilot-cli-proxy" in keys
            assert KEY.encode() not in keys  # buckets are named by key id, not by the key
        finally:
            for server in servers:
                server.stop()


def test_unreachable_redis_lets_requests_through_and_says_so(tmp_path: Path) -> None:
    dead = free_port()  # nothing listens there
    env = fake_env(
        "copilot",
        RATE_LIMIT_MAX="1",
        RATE_LIMIT_STORAGE_URI=f"redis://:hunter2-secret@127.0.0.1:{dead}/0",
    )
    proxy = start_server(tmp_path, env)
    try:
        for _ in range(3):
            assert httpx.get(proxy.url + "/v1/models", timeout=10).status_code == 200
        assert wait_until(lambda: "rate limit storage" in proxy.log(), 5)
        assert "hunter2-secret" not in proxy.log()
    finally:
        proxy.stop()


def request_log_ips(proxy: ProxyServer) -> list[str]:
    logs = proxy.temp_base.parent / "logs" / "requests"
    return [json.loads(p.read_text())["client_ip"] for p in sorted(logs.glob("*/*.json"))]


def test_a_forged_x_forwarded_for_neither_escapes_the_limit_nor_forges_the_address(
    tmp_path: Path,
) -> None:
    # No keys: the bucket is the client address. TRUST_PROXY_HEADERS is false (the
    # default), so the header is the client's own words, whatever the peer.
    proxy = start_server(tmp_path, fake_env("copilot", RATE_LIMIT_MAX="2"))
    try:
        answers = [
            httpx.get(
                proxy.url + "/v1/models", headers={"X-Forwarded-For": f"198.51.100.{n}"}, timeout=10
            )
            for n in (1, 2, 3)
        ]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert [a.headers.get("x-ratelimit-remaining") for a in answers[:2]] == ["1", "0"]
        assert wait_until(lambda: len(request_log_ips(proxy)) == 3, 10)
        assert set(request_log_ips(proxy)) == {"127.0.0.1"}
    finally:
        proxy.stop()


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket(
    tmp_path: Path,
) -> None:
    env = fake_env(
        "copilot", RATE_LIMIT_MAX="1", TRUST_PROXY_HEADERS="true", FORWARDED_ALLOW_IPS="127.0.0.1"
    )
    proxy = start_server(tmp_path, env)
    try:

        def get(client: str) -> int:
            headers = {"X-Forwarded-For": f"203.0.113.50, {client}"}
            return httpx.get(proxy.url + "/v1/models", headers=headers, timeout=10).status_code

        assert [get("198.51.100.1"), get("198.51.100.2"), get("198.51.100.1")] == [200, 200, 429]
        assert wait_until(lambda: len(request_log_ips(proxy)) == 3, 10)
        assert sorted(request_log_ips(proxy)) == ["198.51.100.1", "198.51.100.1", "198.51.100.2"]
    finally:
        proxy.stop()
