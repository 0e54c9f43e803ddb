"""The rate limit: buckets, headers, the 429, and what happens when its storage fails."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from limits.aio.storage import MemoryStorage
from limits.errors import StorageError

from copilot_cli_proxy.gate.ratelimit import (
    Decision,
    RequestRateLimiter,
    build_storage,
)
from tests.unit.scripted import client, scripted_app


def test_decision_headers_and_retry_after() -> None:
    decision = Decision(allowed=False, limit=10, remaining=0, reset_at=1000.2)
    assert decision.headers() == {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1001",
    }
    assert decision.retry_after(now=990.0) == 11
    assert decision.retry_after(now=1000.5) == 1  # never 0: "retry now" would be a lie


@pytest.mark.parametrize(("window_ms", "seconds"), [(1000, 1), (1001, 2), (60_000, 60)])
def test_window_is_whole_seconds_rounded_up(window_ms: int, seconds: int) -> None:
    assert RequestRateLimiter(5, window_ms, MemoryStorage()).window_s == seconds


@pytest.mark.parametrize(
    "uri",
    [
        "memory://",
        "redis://127.0.0.1:1/0",
        "rediss://user:pw@example.test:6380",
        "async+redis://h:1",
    ],
)
def test_storage_uris_build_without_connecting(uri: str) -> None:
    assert build_storage(uri) is not None


async def test_counts_down_then_refuses_per_bucket() -> None:
    limiter = RequestRateLimiter(3, 60_000, MemoryStorage())
    decisions = [await limiter.hit("key:a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].reset_at > time.time()
    assert (await limiter.hit("key:b")).allowed  # another bucket is untouched


def limited_app(tmp_path: Path, **overrides: object) -> httpx.AsyncClient:
    settings = {"rate_limit_max": 2, "rate_limit_window": 60_000, **overrides}
    return client(scripted_app(tmp_path, **settings))


async def test_429_in_the_openai_envelope_with_retry_after(tmp_path: Path) -> None:
    async with limited_app(tmp_path) as http:
        first = await http.get("/v1/models")
        second = await http.get("/v1/models")
        third = await http.get("/v1/models")
    assert first.status_code == second.status_code == 200
    assert first.headers["x-ratelimit-limit"] == "2"
    assert first.headers["x-ratelimit-remaining"] == "1"
    assert second.headers["x-ratelimit-remaining"] == "0"
    assert int(first.headers["x-ratelimit-reset"]) >= int(time.time())
    assert third.status_code == 429
    error = third.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_exceeded"
    assert "2 requests per 60 s" in error["message"]
    assert 1 <= int(third.headers["retry-after"]) <= 60
    assert third.headers["x-ratelimit-remaining"] == "0"
    assert third.headers["x-should-retry"] == "true"
    assert third.headers["x-request-id"]


async def test_health_and_metrics_are_never_limited(tmp_path: Path) -> None:
    async with limited_app(tmp_path, rate_limit_max=1) as http:
        for _ in range(5):
            assert (await http.get("/health")).status_code == 200
            assert (await http.get("/metrics")).status_code == 200
        assert (await http.get("/v1/models")).status_code == 200
        assert (await http.get("/v1/models")).status_code == 429
        assert (
            "copilot_cli_proxy_rate_limit_rejections_total 1.0" in (await http.get("/metrics")).text
        )


async def test_with_keys_each_key_has_its_own_bucket(tmp_path: Path) -> None:
    keys = ("alpha-key-0001", "beta-key-0002")
    async with limited_app(tmp_path, rate_limit_max=1, api_key=keys) as http:
        alpha = {"x-api-key": "alpha-key-0001"}
        beta = {"Authorization": "Bearer beta-key-0002"}
        assert (await http.get("/v1/models", headers=alpha)).status_code == 200
        assert (await http.get("/v1/models", headers=alpha)).status_code == 429
        assert (await http.get("/v1/models", headers=beta)).status_code == 200
        refused = await http.get("/v1/models", headers=beta)
        assert refused.status_code == 429
        assert "this API key" in refused.json()["error"]["message"]


async def test_without_keys_the_bucket_is_the_client_address(tmp_path: Path) -> None:
    async with limited_app(tmp_path, rate_limit_max=1) as http:
        spoofed = {"X-Forwarded-For": "198.51.100.1"}
        assert (await http.get("/v1/models", headers=spoofed)).status_code == 200
        # X-Forwarded-For is not believed by default: still the same address.
        refused = await http.get("/v1/models", headers={"X-Forwarded-For": "198.51.100.2"})
        assert refused.status_code == 429
        assert "this address" in refused.json()["error"]["message"]


async def test_trusted_proxy_headers_separate_clients(tmp_path: Path) -> None:
    async with limited_app(
        tmp_path, rate_limit_max=1, trust_proxy_headers=True, forwarded_allow_ips=("203.0.113.7",)
    ) as http:
        one = {"X-Forwarded-For": "198.51.100.1"}
        two = {"X-Forwarded-For": "10.0.0.9, 198.51.100.2"}
        assert (await http.get("/v1/models", headers=one)).status_code == 200
        assert (await http.get("/v1/models", headers=two)).status_code == 200
        assert (await http.get("/v1/models", headers=one)).status_code == 429
        # The client can write the left part, not the part our proxy appends.
        forged = {"X-Forwarded-For": "198.51.100.77, 198.51.100.2"}
        assert (await http.get("/v1/models", headers=forged)).status_code == 429


async def test_a_failing_storage_lets_requests_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: RequestRateLimiter, key: str) -> Decision:
        raise StorageError(ConnectionError("redis is down"))

    monkeypatch.setattr(RequestRateLimiter, "hit", broken)
    async with limited_app(tmp_path, rate_limit_max=1) as http:
        for _ in range(3):
            response = await http.get("/v1/models")
            assert response.status_code == 200
            assert "x-ratelimit-limit" not in response.headers


async def test_rate_limit_off_sends_no_headers(tmp_path: Path) -> None:
    async with limited_app(tmp_path, rate_limit_max=0) as http:
        for _ in range(5):
            response = await http.get("/v1/models")
            assert response.status_code == 200
            assert "x-ratelimit-limit" not in response.headers


async def test_proxy_headers_from_a_peer_not_in_forwarded_allow_ips_are_not_believed(
    tmp_path: Path,
) -> None:
    # The peer (203.0.113.7) is not the configured proxy: its X-Forwarded-For is its own.
    async with limited_app(tmp_path, rate_limit_max=1, trust_proxy_headers=True) as http:
        assert (
            await http.get("/v1/models", headers={"X-Forwarded-For": "198.51.100.1"})
        ).is_success
        refused = await http.get("/v1/models", headers={"X-Forwarded-For": "198.51.100.2"})
        assert refused.status_code == 429
