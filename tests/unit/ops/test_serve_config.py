"""What ``serve`` hands uvicorn: the connection limits and proxy settings come from ours."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from starlette.applications import Starlette
from uvicorn.middleware.message_logger import MessageLoggerMiddleware
from uvicorn.protocols.http.h11_impl import H11Protocol

from copilot_cli_proxy.ops.serve import server_config
from copilot_cli_proxy.ops.slowclients import DeadlineH11Protocol
from copilot_cli_proxy.settings import Settings


def test_uvicorn_never_reads_proxy_headers_itself() -> None:
    # Its default believes X-Forwarded-For from any loopback peer: the rate limit and
    # the logged client address would be the client's to choose.
    for trust in ("false", "true"):
        settings = Settings.from_env({"TRUST_PROXY_HEADERS": trust})
        assert server_config(settings, Starlette()).proxy_headers is False


def test_connection_limits_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"KEEP_ALIVE_TIMEOUT": "2500", "HEADER_TIMEOUT": "1500", "BODY_TIMEOUT": "4000"}
    )
    config = server_config(settings, Starlette())
    assert config.timeout_keep_alive == 3  # whole seconds, rounded up
    protocol = config.http
    assert isinstance(protocol, type) and issubclass(protocol, DeadlineH11Protocol)
    assert issubclass(protocol, H11Protocol)
    assert (protocol.header_timeout_s, protocol.body_timeout_s) == (1.5, 4.0)


def test_defaults_bound_every_slow_client() -> None:
    settings = Settings()
    assert 0 < settings.header_timeout_s <= 60
    assert 0 < settings.body_timeout_s <= 300
    assert 0 < settings.keep_alive_timeout <= 60_000


@pytest.mark.parametrize("level", ["INFO", "SUCCESS", "WARNING", "ERROR"])
def test_uvicorn_does_not_log_every_asgi_message_unless_trace_is_asked(level: str) -> None:
    """Regression: the intercept handler's root level 0 turned on uvicorn's message
    logger, one log record per streamed chunk, at any LOG_LEVEL."""
    settings = Settings.from_env({"LOG_LEVEL": level, "LOG_DIR": "logs-unused"})
    logging.basicConfig(level=0, force=True)  # as logs.setup_logging leaves the root
    try:
        config = server_config(settings, Starlette())
        config.load()
        assert not isinstance(config.loaded_app, MessageLoggerMiddleware)
        trace = server_config(Settings.from_env({"LOG_LEVEL": "TRACE"}), Starlette())
        trace.load()
        assert isinstance(trace.loaded_app, MessageLoggerMiddleware)
    finally:
        logging.basicConfig(level=logging.WARNING, force=True)
        for name in ("uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
            logging.getLogger(name).setLevel(logging.NOTSET)
