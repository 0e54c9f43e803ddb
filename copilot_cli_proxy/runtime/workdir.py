"""One private temp working directory per request, removed whatever happens."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from loguru import logger

PREFIX = "req-"


def ensure_base(base: Path) -> None:
    base.mkdir(parents=True, exist_ok=True, mode=0o700)


def sweep_stale(base: Path) -> int:
    """Remove request dirs a previous, killed server left behind. Call at start-up only."""
    if not base.is_dir():
        return 0
    removed = 0
    for path in base.glob(PREFIX + "*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


@asynccontextmanager
async def request_workdir(base: Path) -> AsyncIterator[Path]:
    ensure_base(base)
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    try:
        yield path
    finally:
        # Shielded: on a client disconnect or timeout this runs inside a cancelled
        # scope, and an unshielded await would be cancelled and leave the dir behind.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, path, True)
        if await anyio.Path(path).exists():
            logger.warning("could not remove request dir {}", path)
