"""Fixtures for the kind = "openai" backend tests: a fake upstream and a backend on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from copilot_cli_proxy.backends.openai_http import OpenAIUpstreamBackend
from tests.fakeupstream.server import FakeUpstream
from tests.unit.backends.upstream.helpers import make_backend


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    try:
        yield upstream
    finally:
        upstream.stop()


@pytest.fixture
async def backend(fake: FakeUpstream, tmp_path: Path) -> AsyncIterator[OpenAIUpstreamBackend]:
    made = make_backend(fake, tmp_path / "state")
    try:
        yield made
    finally:
        await made.stop()
