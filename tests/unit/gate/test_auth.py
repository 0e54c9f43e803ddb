"""API keys: where they may come from, how they are compared, what a refusal looks like."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.datastructures import Headers

from copilot_cli_proxy.gate.auth import KeyRing, key_id, presented_keys
from copilot_cli_proxy.gate.auththrottle import AuthThrottle
from tests.unit.scripted import chat_body, client, scripted_app

KEYS = ("alpha-key-0001", "beta-key-0002")


def headers(*pairs: tuple[str, str]) -> Headers:
    return Headers(raw=[(k.lower().encode(), v.encode("latin-1")) for k, v in pairs])


def test_key_id_is_short_stable_and_does_not_contain_the_key() -> None:
    ident = key_id("alpha-key-0001")
    assert ident == key_id("alpha-key-0001")
    assert ident != key_id("alpha-key-0002")
    assert ident.startswith("key_") and len(ident) == 14
    assert "alpha" not in ident


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("Authorization", "Bearer abc")], ["abc"]),
        ([("Authorization", "bearer abc")], ["abc"]),
        ([("Authorization", "BEARER   abc  ")], ["abc"]),
        ([("x-api-key", "abc")], ["abc"]),
        ([("X-API-Key", " abc ")], ["abc"]),
        ([("Authorization", "Bearer a"), ("x-api-key", "b")], ["a", "b"]),
        ([("Authorization", "abc")], []),  # no scheme: not a key
        ([("Authorization", "Basic YWJjOmRlZg==")], []),
        ([("Authorization", "Bearer")], []),
        ([("Authorization", "Bearer ")], []),
        ([("x-api-key", "")], []),
        ([("api-key", "abc"), ("x-auth", "abc"), ("cookie", "key=abc")], []),
        ([], []),
    ],
)
def test_presented_keys(pairs: list[tuple[str, str]], expected: list[str]) -> None:
    assert presented_keys(headers(*pairs)) == expected


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "alpha-key-000",  # a prefix
        "alpha-key-00011",  # the key and more
        "ALPHA-KEY-0001",
        " alpha-key-0001",
        "alpha-key-0001\x00",
        "alpha-key-0001,beta-key-0002",
        "ålpha-key-0001",
        "\udcff",  # undecodable bytes survive as surrogates
    ],
)
def test_ring_refuses_near_misses(candidate: str) -> None:
    assert KeyRing(KEYS).match(candidate) is None


def test_ring_names_the_matching_key() -> None:
    ring = KeyRing(KEYS)
    assert ring.match("alpha-key-0001") == key_id("alpha-key-0001")
    assert ring.match("beta-key-0002") == key_id("beta-key-0002")
    assert bool(ring) and not bool(KeyRing(()))


@pytest.fixture
def app_client(tmp_path: Path) -> httpx.AsyncClient:
    return client(scripted_app(tmp_path, api_key=KEYS))


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["x-request-id"]


async def test_missing_key_is_401_naming_both_headers(app_client: httpx.AsyncClient) -> None:
    async with app_client:
        response = await app_client.post("/v1/chat/completions", json=chat_body())
    assert_401(response)
    assert "Authorization: Bearer" in response.json()["error"]["message"]
    assert "x-api-key" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v1/chat/completions", "POST"),
        ("/chat/completions", "POST"),
        ("/v1/models", "GET"),
        ("/models", "GET"),
        ("/v1/models/scripted-1", "GET"),
        ("/metrics", "GET"),
        ("/no/such/route", "GET"),
    ],
)
async def test_every_route_but_health_needs_the_key(
    app_client: httpx.AsyncClient, path: str, method: str
) -> None:
    async with app_client:
        assert_401(await app_client.request(method, path, json=chat_body()))
        assert (await app_client.get("/health")).status_code == 200


@pytest.mark.parametrize(
    "auth",
    [
        {"Authorization": "Bearer alpha-key-0001"},
        {"Authorization": "bearer beta-key-0002"},
        {"x-api-key": "alpha-key-0001"},
        {"x-api-key": "beta-key-0002"},
    ],
)
async def test_good_key_in_either_header_passes(
    app_client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    async with app_client:
        response = await app_client.post("/v1/chat/completions", json=chat_body(), headers=auth)
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "echo: hello"
        assert (await app_client.get("/v1/models", headers=auth)).status_code == 200


@pytest.mark.parametrize(
    ("where", "request_kwargs"),
    [
        ("wrong key", {"headers": {"Authorization": "Bearer gamma-key-0003"}}),
        ("no scheme", {"headers": {"Authorization": "alpha-key-0001"}}),
        ("basic auth", {"auth": ("alpha-key-0001", "")}),
        ("query string", {"params": {"api_key": "alpha-key-0001", "key": "alpha-key-0001"}}),
        ("cookie", {"headers": {"Cookie": "api_key=alpha-key-0001"}}),
        ("other header", {"headers": {"api-key": "alpha-key-0001"}}),
        ("request id", {"headers": {"X-Request-ID": "alpha-key-0001"}}),
        ("both keys joined", {"headers": {"x-api-key": "alpha-key-0001,beta-key-0002"}}),
    ],
)
async def test_keys_in_odd_places_do_not_authenticate(
    app_client: httpx.AsyncClient, where: str, request_kwargs: dict[str, object]
) -> None:
    async with app_client:
        response = await app_client.post(
            "/v1/chat/completions",
            json={**chat_body(), "api_key": "alpha-key-0001", "user": "alpha-key-0001"},
            **request_kwargs,  # type: ignore[arg-type]
        )
    assert_401(response)


async def test_one_good_key_among_bad_ones_passes(app_client: httpx.AsyncClient) -> None:
    async with app_client:
        response = await app_client.get(
            "/v1/models",
            headers={"Authorization": "Bearer wrong-key-9999", "x-api-key": "alpha-key-0001"},
        )
    assert response.status_code == 200


async def test_without_keys_everything_is_open(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path)) as http:
        assert (await http.get("/v1/models")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200
        response = await http.get("/v1/models", headers={"Authorization": "Bearer anything"})
        assert response.status_code == 200


async def test_metrics_can_be_opened_to_scrapers(tmp_path: Path) -> None:
    app = scripted_app(tmp_path, api_key=KEYS, metrics_require_key=False)
    async with client(app) as http:
        assert (await http.get("/metrics")).status_code == 200
        assert_401(await http.get("/v1/models"))


async def test_the_throttle_counts_failures_per_address() -> None:
    throttle = AuthThrottle(max_failures=2, window_ms=60_000)
    for _ in range(2):
        assert await throttle.wait_for("192.0.2.1") is None
        await throttle.failed("192.0.2.1")
    wait = await throttle.wait_for("192.0.2.1")
    assert wait is not None and 1 <= wait <= 60
    assert await throttle.wait_for("192.0.2.2") is None  # another address, its own count


async def test_throttled_addresses_get_429_in_the_envelope_then_even_a_right_key_waits(
    tmp_path: Path,
) -> None:
    app = scripted_app(tmp_path, api_key=KEYS, auth_failure_max=1)
    async with client(app) as http:
        first = await http.get("/v1/models", headers={"x-api-key": "wrong"})
        second = await http.get("/v1/models", headers={"x-api-key": KEYS[0]})
    assert first.status_code == 401 and first.headers["connection"] == "close"
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "too_many_auth_failures"
    assert int(second.headers["retry-after"]) >= 1
