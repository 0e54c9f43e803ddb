"""The real CLIs through the server, over the fake model API: shared set-up.

Each test gets its own HOME (the "operator's" home, where tests plant secrets and
instruction files), a fake model API, and a server whose CLI talks to that API.
The copilot package cache is kept for the whole session: unpacking it takes ~5 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import ProxyServer, require_real_cli, start_server
from tests.fakemodel.server import FakeModelApi, RealCliEnv

SECRET = "SECRET-7f3a9c"  # planted in files a client must never reach


@pytest.fixture
def fake_model() -> Iterator[FakeModelApi]:
    api = FakeModelApi().start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="session")
def copilot_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("copilot-cache")


@pytest.fixture
def operator_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def real_server_env(
    service: str,
    runner: str,
    api: FakeModelApi,
    home: Path,
    copilot_cache: Path,
    *,
    model: str = "claude-sonnet-4.6",
    wire: str = "anthropic",
) -> dict[str, str]:
    cli = require_real_cli(service)
    real = RealCliEnv(api, str(home), model=model)
    env = real.claude() if service == "claude" else real.copilot(wire)
    env.update(
        {
            "SERVICE": service,
            "RUNNER": runner,
            f"{service.upper()}_CLI_PATH": cli,
            "XDG_CACHE_HOME": str(copilot_cache),
            "REQUEST_TIMEOUT": "90000",
            "DEFAULT_MODEL": model if service == "copilot" else "sonnet",
        }
    )
    return env


def start_real_server(
    tmp_path: Path,
    service: str,
    runner: str,
    api: FakeModelApi,
    home: Path,
    copilot_cache: Path,
    **extra: str,
) -> ProxyServer:
    env = real_server_env(service, runner, api, home, copilot_cache)
    env.update(extra)
    return start_server(tmp_path, env, ready_timeout=90.0)
