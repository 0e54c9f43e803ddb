"""Logging with loguru: console plus rotated files under LOG_DIR; uvicorn's logs routed in.

Every line carries the request id of the request it belongs to (``-`` outside one),
and passes through the redactor first: no API key or CLI token reaches a sink, not
even inside an exception's text (tracebacks are rendered without variable values).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from copilot_cli_proxy.observe.redact import Redactor, collect_secrets
from copilot_cli_proxy.settings import Settings

if TYPE_CHECKING:
    from loguru import Record

FILE_FORMAT = (
    "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {extra[request_id]} | "
    "{name}:{function}:{line} - {message}"
)
CONSOLE_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
    "<cyan>{extra[request_id]}</cyan> | <level>{message}</level>"
)


class _InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def redacting_patcher(redactor: Redactor) -> Callable[[Record], None]:
    def patch(record: Record) -> None:
        exception = record["exception"]
        if exception is not None and exception.type is not None:
            # Sinks would render the exception after the patcher ran, unredacted:
            # render it here and hand the sinks text instead.
            rendered = traceback.format_exception(
                exception.type, exception.value, exception.traceback
            )
            record["message"] = f"{record['message']}\n{''.join(rendered).rstrip()}"
            record["exception"] = None
        record["message"] = redactor.text(record["message"])

    return patch


def setup_logging(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    redactor = Redactor(collect_secrets(settings, os.environ if environ is None else environ))
    logger.remove()
    logger.configure(extra={"request_id": "-"}, patcher=redacting_patcher(redactor))
    logger.add(
        sys.stderr,
        level=settings.log_level,
        format=CONSOLE_FORMAT,
        backtrace=False,
        diagnose=False,
    )
    log_dir = Path(settings.log_dir)
    rotation = f"{settings.log_rotation_mb} MB"
    retention = f"{settings.log_retention_days} days"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        for name, level in (("combined.log", settings.log_level), ("error.log", "ERROR")):
            logger.add(
                log_dir / name,
                level=level,
                format=FILE_FORMAT,
                rotation=rotation,
                retention=retention,
                enqueue=True,
                encoding="utf-8",
                backtrace=False,
                diagnose=False,
            )
    except OSError as exc:
        logger.warning("cannot write logs to {}: {}", log_dir, exc)
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers = [_InterceptHandler()]
        named.propagate = False
