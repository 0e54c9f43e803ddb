"""Every way the upstream can fail, through the backend: status, code, outcome, no secret."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from loguru import logger

from copilot_cli_proxy.backends.openai_http import OpenAIUpstreamBackend
from copilot_cli_proxy.config.backends_file import BackendSpec
from copilot_cli_proxy.errors import Outcome, ProxyError
from copilot_cli_proxy.settings import Settings
from tests.fakeupstream.server import FakeUpstream, Fault
from tests.unit.backends.upstream.helpers import ASK, TOKEN, make_backend, relay_all


async def failure(backend: OpenAIUpstreamBackend, *, stream: bool = True) -> ProxyError:
    with pytest.raises(ProxyError) as caught:
        await relay_all(backend, stream=stream)
    return caught.value


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("status", [400, 404])
async def test_a_request_error_keeps_the_upstreams_status_and_message(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend, status: int, stream: bool
) -> None:
    message = {"error": {"message": "The model `nope` does not exist", "param": "model"}}
    fake.fail_next(Fault("status", status=status, body=message))
    error = await failure(backend, stream=stream)
    assert (error.status, error.code, error.outcome) == (status, "upstream_rejected", "rejected")
    assert error.message == "The model `nope` does not exist" and error.param == "model"


async def test_429_is_429_with_the_upstreams_retry_after(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    fake.fail_next(Fault("status", status=429, headers={"Retry-After": "17"}))
    error = await failure(backend)
    assert (error.status, error.outcome, error.headers()["Retry-After"]) == (
        429,
        "rate_limited",
        "17",
    )
    assert len(fake.chat_requests()) == 1  # no retry of our own: the pool decides


async def test_500_is_502(fake: FakeUpstream, backend: OpenAIUpstreamBackend) -> None:
    fake.fail_next(Fault("status", status=500))
    error = await failure(backend, stream=False)
    assert (error.status, error.code, error.outcome) == (502, "upstream_error", "server_error")


async def test_a_refused_connection_is_502_unreachable(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = BackendSpec(id="up", kind="openai", options={"base_url": f"http://127.0.0.1:{port}"})
    from copilot_cli_proxy.backends.openai_http import build

    backend = build(spec, Settings(state_dir=str(tmp_path)))
    try:
        error = await failure(backend)
    finally:
        await backend.stop()
    assert (error.status, error.outcome) == (502, Outcome.UNREACHABLE)


async def test_a_connection_dropped_mid_stream_fails_after_the_chunks_already_relayed(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    fake.fail_next(Fault("drop", after_chunks=3))
    got = []
    with pytest.raises(ProxyError) as caught:
        async for chunk in backend.relay(ASK, model="m", stream=True, include_usage=False):
            got.append(chunk)
    assert len(got) == 3
    assert (caught.value.status, caught.value.outcome) == (502, Outcome.UNREACHABLE)
    assert backend.connections()["busy"] == 0


async def test_an_error_event_inside_the_stream_fails_it(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    fake.fail_next(Fault("stream_error", after_chunks=2))
    error = await failure(backend)
    assert (error.status, error.outcome) == (502, Outcome.SERVER_ERROR)
    assert "fake failure mid-stream" in error.message


@pytest.mark.parametrize(
    ("fault", "stream"),
    [
        (Fault("stall", after_chunks=-1, seconds=30), False),  # before any byte
        (Fault("stall", after_chunks=2, seconds=30), True),  # between two chunks
    ],
)
async def test_a_stall_trips_the_timeout_as_504(
    fake: FakeUpstream, tmp_path: Path, fault: Fault, stream: bool
) -> None:
    backend = make_backend(fake, tmp_path, timeout_s=0.3)
    fake.fail_next(fault)
    try:
        error = await failure(backend, stream=stream)
    finally:
        await backend.stop()
    assert (error.status, error.code, error.outcome) == (504, "timeout", Outcome.TIMEOUT)


async def test_an_unset_token_is_not_logged_in_and_nothing_is_sent(
    fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UP_TOKEN", raising=False)
    backend = make_backend(fake, tmp_path, auth={"type": "bearer", "token_env": "UP_TOKEN"})
    try:
        error = await failure(backend)
        health = backend.health().as_json()
    finally:
        await backend.stop()
    assert (error.status, error.code, error.outcome) == (
        503,
        "backend_not_logged_in",
        "auth_failed",
    )
    assert "UP_TOKEN is not set" in error.message
    assert fake.chat_requests() == []
    assert health["logged_in"] is False and health["problems"] == ["UP_TOKEN is not set"]


async def test_a_refused_bearer_token_is_503_and_shows_in_health(
    fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UP_TOKEN", TOKEN)
    fake.require_auth = True
    backend = make_backend(fake, tmp_path, auth={"type": "bearer", "token_env": "UP_TOKEN"})
    try:
        error = await failure(backend)
        problems = backend.health().as_json()["problems"]
        fake.accept(TOKEN)
        await relay_all(backend)  # a success clears the problem
        cleared = backend.health().as_json()["problems"]
    finally:
        await backend.stop()
    assert (error.status, error.code) == (503, "backend_auth_failed")
    assert problems == ["the upstream refused the credential (HTTP 401)"]
    assert cleared == []


async def test_the_token_never_reaches_an_error_health_or_a_log(
    fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upstream that echoes the credential in its error message."""
    monkeypatch.setenv("UP_TOKEN", TOKEN)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="TRACE")
    backend = make_backend(fake, tmp_path, auth={"type": "bearer", "token_env": "UP_TOKEN"})
    echo = {"error": {"message": f"bad request with Authorization: Bearer {TOKEN}"}}
    fake.fail_next(Fault("status", status=400, body=echo), Fault("status", status=503, body=echo))
    try:
        first = await failure(backend)
        second = await failure(backend, stream=False)
        await backend.warm_up()
        health = backend.health().as_json()
    finally:
        await backend.stop()
        logger.remove(sink)
    for error in (first, second):
        assert TOKEN not in error.message and TOKEN not in str(error)
        assert "[REDACTED]" in error.message
    assert TOKEN not in repr(health)
    assert lines and not [line for line in lines if TOKEN in line]
