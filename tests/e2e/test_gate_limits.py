"""Hostile input over real HTTP: huge and endless bodies, deep JSON, bad bytes, bad ids."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import ProxyServer, fake_env, start_server

KEY = "alpha-key-0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
LIMIT = 64 * 1024
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    env = fake_env(
        "copilot",
        API_KEY=KEY,
        MAX_BODY_BYTES=str(LIMIT),
        MAX_MESSAGES="50",
        MAX_PROMPT_BYTES="20000",
        CORS_ORIGINS="https://app.example",
    )
    server = start_server(tmp_path_factory.mktemp("limits"), env)
    try:
        yield server
    finally:
        server.stop()


def raw_request(proxy: ProxyServer, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str]]:
    """Send bytes as they are (no client library cleans them up); return status and headers."""
    port = int(proxy.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


def get_head(request_id: bytes) -> bytes:
    return (
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nx-api-key: "
        + KEY.encode()
        + b"\r\nX-Request-ID: "
        + request_id
        + b"\r\nConnection: close\r\n\r\n"
    )


def test_declared_huge_body_is_413_without_sending_it(proxy: ProxyServer) -> None:
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + KEY.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n"
        b"Connection: close\r\n\r\n"
    )
    status, headers = raw_request(proxy, head, b'{"messages": [')
    assert status == 413
    assert headers["x-request-id"]


def test_endless_chunked_body_is_cut_off_at_the_limit(proxy: ProxyServer) -> None:
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        while sent < 50 * LIMIT:  # would be 3 MiB; the server stops reading long before
            sent += 4096
            yield b" " * 4096

    with proxy.http() as http:
        response = http.post("/v1/chat/completions", content=endless(), headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    with proxy.http() as http:
        assert http.get("/health").status_code == 200


def test_body_of_exactly_the_limit_is_served(proxy: ProxyServer) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "padded"}]})
    padded = body[:-1] + " " * (LIMIT - len(body)) + "}"
    assert len(padded) == LIMIT
    with proxy.http() as http:
        response = http.post("/v1/chat/completions", content=padded.encode(), headers=AUTH)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "echo: padded"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"[" * 50_000 + b"]" * 50_000, 413, "request_too_large"),  # over 64 KiB
        (b'{"messages":' + b"[" * 20_000 + b"]" * 20_000 + b"}", 400, "invalid_json"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, 400, "invalid_json"),
        (b'{"messages":[{"role":"user","content":"caf\xe9"}]}', 400, "invalid_json"),
        (b"\xff\xfe\x00\x00garbage", 400, "invalid_json"),
        (b'{"messages":[{"role":"user","content":"\\ud800"}]}', 400, "invalid_request"),
        (b"", 400, "invalid_json"),
    ],
)
def test_hostile_bodies_get_clear_4xx(
    proxy: ProxyServer, body: bytes, status: int, code: str
) -> None:
    with proxy.http() as http:
        response = http.post("/v1/chat/completions", content=body, headers=AUTH)
        assert response.status_code == status
        assert response.json()["error"]["code"] == code
        assert http.get("/health").status_code == 200


def test_message_count_and_prompt_size_limits(proxy: ProxyServer) -> None:
    with proxy.http() as http:
        many = [{"role": "user", "content": "x"}] * 51
        response = http.post("/v1/chat/completions", json={"messages": many}, headers=AUTH)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "too_many_messages"
        big = [{"role": "user", "content": "y" * 20_001}]
        response = http.post("/v1/chat/completions", json={"messages": big}, headers=AUTH)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "prompt_too_large"


def test_sane_request_id_is_honoured_and_names_the_log(proxy: ProxyServer) -> None:
    status, headers = raw_request(proxy, get_head(b"client-trace.42"))
    assert status == 200
    assert headers["x-request-id"] == "client-trace.42"
    logs = proxy.temp_base.parent / "logs" / "requests"
    deadline = time.monotonic() + 5
    while not list(logs.glob("*/client-trace.42.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(logs.glob("*/client-trace.42.json"))


@pytest.mark.parametrize(
    "hostile",
    [
        b"../../etc/passwd",
        b"a b c",
        b'"quoted"',
        b"\xc3\xa9t\xc3\xa9",  # UTF-8 bytes
        b"\xff\xfe\x80",
        b"x" * 500,
        b"id;rm -rf /",
        b"<script>",
        b"%0d%0aSet-Cookie:%20x=1",
    ],
)
def test_hostile_request_ids_are_replaced(proxy: ProxyServer, hostile: bytes) -> None:
    status, headers = raw_request(proxy, get_head(hostile))
    assert status == 200
    assert GENERATED_ID.fullmatch(headers["x-request-id"])
    assert "set-cookie" not in headers


def test_header_injection_cannot_smuggle_a_header(proxy: ProxyServer) -> None:
    # A bare LF inside the value: either the server refuses the request or it reads
    # two header lines; the injected name never comes back as a response header.
    status, headers = raw_request(proxy, get_head(b"abc\nSet-Cookie: owned=1"))
    assert "set-cookie" not in headers
    assert status in (200, 400)


def test_cors_preflight_and_exposed_headers(proxy: ProxyServer) -> None:
    with proxy.http() as http:
        preflight = http.options(
            "/v1/chat/completions",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        response = http.get("/v1/models", headers={**AUTH, "Origin": "https://app.example"})
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-ratelimit-remaining" in response.headers["access-control-expose-headers"].lower()
        stranger = http.get("/v1/models", headers={**AUTH, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers


def test_no_cors_headers_unless_configured(tmp_path: Path) -> None:
    server = start_server(tmp_path, fake_env("copilot"))
    try:
        with server.http() as http:
            response = http.get("/v1/models", headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in response.headers
    finally:
        server.stop()
