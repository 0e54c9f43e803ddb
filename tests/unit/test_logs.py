"""Log sinks: files under LOG_DIR, the request id on each line, and no secret anywhere."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from copilot_cli_proxy.logs import setup_logging
from copilot_cli_proxy.settings import Settings

KEY = "alpha-key-0001"
TOKEN = "gho_" + "Zx9" * 12


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[Path]:
    settings = dataclasses.replace(
        Settings(), log_dir=str(tmp_path / "logs"), log_level="DEBUG", api_key=(KEY,)
    )
    setup_logging(settings, environ={"GH_TOKEN": TOKEN, "PATH": "/usr/bin"})
    try:
        yield tmp_path / "logs"
    finally:
        logger.remove()
        logger.configure(extra={}, patcher=lambda record: None)
        logger.add(sys.stderr)
        logging.basicConfig(handlers=[], force=True)


def read_all(log_dir: Path) -> str:
    logger.complete()
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(log_dir.glob("*.log")))


def test_secrets_are_redacted_in_messages_exceptions_and_stdlib_logs(configured: Path) -> None:
    logger.info("key {} and token {}", KEY, TOKEN)
    try:
        raise RuntimeError(f"failed with {KEY} / Bearer {TOKEN}")
    except RuntimeError:
        logger.exception("it broke")
    logging.getLogger("uvicorn.error").error("header was x-api-key: %s", KEY)
    text = read_all(configured)
    assert KEY not in text and TOKEN not in text
    assert text.count("[REDACTED]") >= 4
    assert "RuntimeError" in text and "Traceback" in text


def test_error_log_holds_only_errors_and_lines_carry_the_request_id(configured: Path) -> None:
    logger.info("outside any request")
    with logger.contextualize(request_id="req-42"):
        logger.warning("a warning inside a request")
        logger.error("an error inside a request")
    logger.complete()
    combined = (configured / "combined.log").read_text()
    errors = (configured / "error.log").read_text()
    assert "| - | " in combined and "outside any request" in combined
    assert "| req-42 | " in combined and "a warning inside a request" in combined
    assert "| req-42 | " in errors and "an error inside a request" in errors
    assert "a warning" not in errors
    assert "outside any request" not in errors


def test_rotation_and_retention_come_from_settings(tmp_path: Path) -> None:
    settings = dataclasses.replace(
        Settings(), log_dir=str(tmp_path), log_rotation_mb=1, log_retention_days=2
    )
    setup_logging(settings, environ={})
    try:
        for _ in range(400):
            logger.info("x" * 5000)  # ~2 MB: at least one rotation at 1 MB
        logger.complete()
        assert len(list(tmp_path.glob("combined*.log"))) >= 2
    finally:
        logger.remove()
        logger.configure(extra={}, patcher=lambda record: None)
        logger.add(sys.stderr)
        logging.basicConfig(handlers=[], force=True)
