"""Logging with loguru: console plus files under LOG_DIR; uvicorn's logs routed in."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from loguru import logger

from copilot_cli_proxy.settings import Settings


class _InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(settings: Settings) -> None:
    logger.remove()
    logger.add(sys.stderr, level=settings.log_level, enqueue=False)
    log_dir = Path(settings.log_dir)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        logger.add(
            log_dir / "combined.log",
            level=settings.log_level,
            rotation="10 MB",
            retention="14 days",
            enqueue=True,
        )
        logger.add(
            log_dir / "error.log",
            level="ERROR",
            rotation="10 MB",
            retention="30 days",
            enqueue=True,
        )
    except OSError as exc:
        logger.warning("cannot write logs to {}: {}", log_dir, exc)
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers = [_InterceptHandler()]
        named.propagate = False
