"""Every contract test runs once per target, on the session's shared server for it."""

from __future__ import annotations

import pytest

from tests.e2e.targets import TARGETS, ServerPool, Target


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, fake_servers: ServerPool) -> Target:
    return fake_servers.get(str(request.param))
