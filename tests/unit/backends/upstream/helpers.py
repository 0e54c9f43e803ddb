"""Helpers for the kind = "openai" backend tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from copilot_cli_proxy.backends.openai_http import OpenAIUpstreamBackend, build
from copilot_cli_proxy.config.backends_file import BackendSpec
from copilot_cli_proxy.core.types import UpstreamBody, UpstreamChunk
from copilot_cli_proxy.settings import Settings
from tests.fakeupstream.server import FakeUpstream

TOKEN = "tok-0123456789abcdef-secret"
ASK = {"model": "client-name", "messages": [{"role": "user", "content": "Hi"}]}


def make_backend(
    fake: FakeUpstream, state: Path, backend_id: str = "up", **options: Any
) -> OpenAIUpstreamBackend:
    options.setdefault("base_url", fake.url)
    spec = BackendSpec(id=backend_id, kind="openai", options=options)
    return build(spec, Settings(state_dir=str(state)))


async def relay_all(
    backend: OpenAIUpstreamBackend,
    body: dict[str, Any] | None = None,
    *,
    model: str = "gpt-4.1",
    stream: bool = True,
    include_usage: bool = False,
) -> list[dict[str, Any]]:
    """Every chunk's data (stream) or the one body, in order."""
    out: list[dict[str, Any]] = []
    relay = backend.relay(body or ASK, model=model, stream=stream, include_usage=include_usage)
    async for item in relay:
        assert isinstance(item, UpstreamChunk if stream else UpstreamBody)
        out.append(item.data)
    return out


def sent_events(fake: FakeUpstream, index: int = -1) -> list[Any]:
    """What the fake streamed, parsed, without [DONE]."""
    return [json.loads(e) for e in fake.streams[index] if e != "[DONE]"]
