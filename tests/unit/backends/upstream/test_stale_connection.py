"""A kept-alive connection the upstream closed as it was reused: one retry, not a 502.

The fake is a raw HTTP/1.1 server, so the test decides exactly when a connection
closes without an answer (uvicorn would answer 500 instead).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream

from copilot_cli_proxy.backends.openai_http import OpenAIUpstreamBackend, build
from copilot_cli_proxy.config.backends_file import BackendSpec
from copilot_cli_proxy.errors import Outcome, ProxyError
from copilot_cli_proxy.settings import Settings
from tests.unit.backends.upstream.helpers import ASK, relay_all

ANSWER = json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode()
# Whether to answer request number n (counted over all connections) on connection c.
Policy = Callable[[int, int], bool]


class RawUpstream:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.requests = 0
        self.connections = 0

    async def serve(self, stream: SocketStream) -> None:
        self.connections += 1
        connection = self.connections
        buffer = b""
        async with stream:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        buffer += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(buffer) < length:
                    buffer += await stream.receive()
                buffer = buffer[length:]
                self.requests += 1
                if not self.policy(self.requests, connection):
                    return  # closed without a word, as a server whose keep-alive ran out
                await stream.send(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(ANSWER)}\r\n\r\n".encode()
                    + ANSWER
                )


@asynccontextmanager
async def serving(
    policy: Policy, tmp_path: Path
) -> AsyncIterator[tuple[RawUpstream, OpenAIUpstreamBackend]]:
    raw = RawUpstream(policy)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, raw.serve)
        port = listener.extra(SocketAttribute.local_port)
        url = f"http://127.0.0.1:{port}"
        spec = BackendSpec(id="up", kind="openai", options={"base_url": url})
        backend = build(spec, Settings(state_dir=str(tmp_path)))
        try:
            yield raw, backend
        finally:
            await backend.stop()
            tg.cancel_scope.cancel()


async def test_a_connection_closed_as_it_is_reused_is_retried_once(tmp_path: Path) -> None:
    # The second request arrives on the first connection, which then closes unanswered.
    async with serving(lambda n, connection: n != 2, tmp_path) as (raw, backend):
        assert await relay_all(backend, stream=False)
        assert await relay_all(backend, stream=False)
    assert (raw.requests, raw.connections) == (3, 2)


async def test_an_upstream_that_never_answers_is_502_after_one_retry(tmp_path: Path) -> None:
    async with serving(lambda n, connection: False, tmp_path) as (raw, backend):
        with pytest.raises(ProxyError) as caught:
            await relay_all(backend, ASK, stream=False)
    assert (caught.value.status, caught.value.outcome) == (502, Outcome.UNREACHABLE)
    assert raw.requests == 2
