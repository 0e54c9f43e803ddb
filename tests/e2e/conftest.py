"""Fixtures for end-to-end tests; the machinery lives in harness.py and targets.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.targets import ServerPool


@pytest.fixture(params=["copilot", "claude"])
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def fake_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    """Servers over the fakes with default settings, shared by every module that asks."""
    pool = ServerPool(tmp_path_factory.mktemp("shared-servers"))
    try:
        yield pool
    finally:
        pool.stop()
