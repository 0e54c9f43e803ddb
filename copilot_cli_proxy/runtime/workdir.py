"""One private temp working directory per request, removed whatever happens.

The base dir holds every request's files, and the CLIs read instruction files (CLAUDE.md,
AGENTS.md, …) from every parent of their working dir. So the default base is the server
user's own, not the world-writable /tmp, where any local user can create the base dir
first (and own it) or plant such files; and a base that someone else owns or can write
is refused.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from loguru import logger

from copilot_cli_proxy.errors import ProxyError

PREFIX = "req-"
APP_DIR = "copilot-cli-proxy"


def default_temp_base(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME`` (else ``~/.cache``) ``/copilot-cli-proxy/requests``."""
    source = os.environ if env is None else env
    cache = source.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / APP_DIR / "requests"


class UnsafeTempBase(PermissionError):
    """The base dir is not the server user's alone."""


def ensure_base(base: Path) -> None:
    """Create ``base`` (0700) if needed; refuse one that another user owns or can write."""
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    me = os.geteuid()
    link = base.lstat()
    info = base.stat()
    if link.st_uid != me or info.st_uid != me:
        raise UnsafeTempBase(
            f"TEMP_DIR_BASE {base} belongs to another user (uid {info.st_uid}); "
            "the server keeps request files only in a dir of its own"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(f"TEMP_DIR_BASE {base} is not a directory")
    if info.st_mode & 0o022:
        # Ours, but others could add or swap files in it: close it.
        base.chmod(stat.S_IMODE(info.st_mode) & ~0o022)
        logger.warning("TEMP_DIR_BASE {} was writable by other users; it is not any more", base)


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


def make_request_dir(base: Path) -> Path:
    """A new private dir under ``base``; a failure on the server's side is a clear 503."""
    try:
        ensure_base(base)
        return Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    except OSError as exc:
        raise ProxyError(
            "cli_start_failed",
            f"The server could not make a request dir under TEMP_DIR_BASE: {exc.strerror or exc}.",
        ) from exc


@asynccontextmanager
async def request_workdir(base: Path) -> AsyncIterator[Path]:
    path = make_request_dir(base)
    try:
        yield path
    finally:
        # Shielded: on a client disconnect or timeout this runs inside a cancelled
        # scope, and an unshielded await would be cancelled and leave the dir behind.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, path, True)
        if await anyio.Path(path).exists():
            logger.warning("could not remove request dir {}", path)
