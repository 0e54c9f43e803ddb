"""Slow and rejected clients over raw sockets: each connection is closed within its limit.

Each holds a file descriptor for as long as the server lets it: a silent connection,
headers or a body sent a byte at a time, a body nobody reads, a rejected client that
keeps sending. The limits here are short (1 s); each test waits for the server to
close the connection, with a deadline far past the limit, while the client keeps
dripping bytes as a slowloris would.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.e2e.harness import ProxyServer, fake_env, start_server

KEY = "alpha-key-0001"
LIMIT_S = 1.0
DEADLINE_S = 15.0  # far past every limit: only a connection never closed reaches it
DRIP_EVERY_S = 0.2


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    env = fake_env(
        "copilot",
        API_KEY=KEY,
        HEADER_TIMEOUT=str(int(LIMIT_S * 1000)),
        BODY_TIMEOUT=str(int(LIMIT_S * 1000)),
        MAX_BODY_BYTES="65536",
        AUTH_FAILURE_MAX="0",  # wrong keys are sent on purpose here
    )
    server = start_server(tmp_path_factory.mktemp("slow"), env)
    try:
        yield server
    finally:
        server.stop()


def connect(proxy: ProxyServer) -> socket.socket:
    port = int(proxy.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def drip_until_closed(sock: socket.socket, drip: bytes = b"") -> tuple[bytes, bool]:
    """Send ``drip`` a byte at a time until the server closes; return what it sent and
    whether it closed before DEADLINE_S. A reset counts as closed."""
    received = b""
    position = 0
    deadline = time.monotonic() + DEADLINE_S
    sock.settimeout(DRIP_EVERY_S)  # the pace of the drip, not a wait for a state
    while time.monotonic() < deadline:
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            if drip:
                try:
                    sock.sendall(drip[position % len(drip) : position % len(drip) + 1])
                except (BrokenPipeError, ConnectionResetError):
                    return received, True
                position += 1
            continue
        except ConnectionResetError:
            return received, True
        if not piece:
            return received, True
        received += piece
    return received, False


def head_of(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def test_a_connection_that_never_sends_is_closed(proxy: ProxyServer) -> None:
    with connect(proxy) as sock:
        received, closed = drip_until_closed(sock)
    assert closed and received == b""


def test_headers_sent_a_byte_at_a_time_are_cut_off(proxy: ProxyServer) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        received, closed = drip_until_closed(sock, b"X-Slow: " + b"a" * 1000)
    assert closed and received == b""


def test_a_kept_alive_connection_sending_its_next_headers_slowly_is_cut_off(
    proxy: ProxyServer,
) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        _, closed = drip_until_closed(sock, b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 999)
    assert closed


def chat_head(key: str, length: int) -> bytes:
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_body_sent_slowly_gets_408_and_the_connection_closed(proxy: ProxyServer) -> None:
    with connect(proxy) as sock:
        sock.sendall(chat_head(KEY, 5000) + b'{"messages": [')
        received, closed = drip_until_closed(sock, b" ")
    assert closed
    status, headers, body = head_of(received)
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "request_timeout"


@pytest.mark.parametrize(
    ("key", "length", "status"),
    [("wrong-key-0000", 5000, 401), (KEY, 10_000_000, 413)],
)
def test_a_rejected_client_cannot_keep_streaming_its_body(
    proxy: ProxyServer, key: str, length: int, status: int
) -> None:
    with connect(proxy) as sock:
        sock.sendall(chat_head(key, length) + b'{"messages": [')
        received, closed = drip_until_closed(sock, b" " * 4096)
    assert closed
    got, headers, _ = head_of(received)
    assert got == status
    assert headers["connection"] == "close"


def test_a_body_nobody_reads_is_not_read_forever(proxy: ProxyServer) -> None:
    head = (
        f"POST /nowhere HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\nContent-Length: 50000\r\n\r\n"
    ).encode()
    with connect(proxy) as sock:
        sock.sendall(head)
        received, closed = drip_until_closed(sock, b" ")
    assert closed
    assert head_of(received)[0] == 404


def test_an_honest_slow_client_within_the_limits_is_served(proxy: ProxyServer) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    with connect(proxy) as sock:
        sock.sendall(chat_head(KEY, len(body)) + body)
        received = b""
        while piece := sock.recv(65536):
            received += piece
            if b'"finish_reason"' in received:
                break
    status, _, answer = head_of(received)
    assert status == 200 and b"echo: hi" in answer


def test_the_server_still_answers_after_all_that(proxy: ProxyServer) -> None:
    with proxy.http() as http:
        assert http.get("/health").status_code == 200
