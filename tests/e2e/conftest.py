"""Fixtures for end-to-end tests; the machinery lives in harness.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import ProxyServer, fake_env, start_server


@pytest.fixture(params=["copilot", "claude"])
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(tmp_path: Path, service: str) -> Iterator[ProxyServer]:
    """A server over the fake CLI of each service in turn."""
    proxy = start_server(tmp_path, fake_env(service))
    try:
        yield proxy
    finally:
        proxy.stop()
