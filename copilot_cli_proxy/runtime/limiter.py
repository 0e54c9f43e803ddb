"""At most N CLI processes at once (each costs ~300 MB), with a bounded wait queue."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from copilot_cli_proxy.errors import ProxyError


class ProcessLimiter:
    def __init__(self, max_concurrent: int, max_queue: int, queue_timeout_s: float) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self._queue_timeout_s = queue_timeout_s
        self._semaphore = anyio.Semaphore(max_concurrent)
        self.waiting = 0

    @property
    def active(self) -> int:
        return self.max_concurrent - self._semaphore.value

    def _busy(self, why: str) -> ProxyError:
        return ProxyError(
            "server_busy",
            f"The server is busy: every CLI slot ({self.max_concurrent}) is in use and {why}.",
            retry_after=max(1, math.ceil(min(self._queue_timeout_s, 5.0))),
        )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._semaphore.value == 0:
            if self.waiting >= self.max_queue:
                raise self._busy(f"the wait queue is full ({self.max_queue})")
            self.waiting += 1
            try:
                with anyio.fail_after(self._queue_timeout_s):
                    await self._semaphore.acquire()
            except TimeoutError:
                raise self._busy(f"no slot freed within {self._queue_timeout_s:g} s") from None
            finally:
                self.waiting -= 1
        else:
            await self._semaphore.acquire()
        try:
            yield
        finally:
            self._semaphore.release()
