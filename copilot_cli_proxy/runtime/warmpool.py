"""One keyed warm pool for every runner that prepares work ahead of a request.

It keeps idle things by key (claude's warm processes, keyed by model, system text, effort
and schema; copilot's sessions made ahead, keyed by what ``session.create`` fixes) and
counts every live one from the moment a start is decided until it is gone: idle,
starting, serving or being closed. A claude process costs ~300 MB, and the request limiter
caps only the ones serving a request, so the count never exceeds the cap (MAX_CONCURRENT):
a background start happens only when there is room; a request that needs one evicts idle
ones, oldest first, or waits for one to go (the limiter guarantees one will). Only the
``keep`` newest keys stay idle.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar

import anyio


class PooledProcess(Protocol):
    @property
    def alive(self) -> bool: ...

    async def aclose(self) -> None: ...


K = TypeVar("K", bound=Hashable)
P = TypeVar("P", bound=PooledProcess)


class WarmPool(Generic[K, P]):
    def __init__(self, cap: int, keep: int) -> None:
        self.cap = max(1, cap)
        self.keep = max(0, keep)
        self.live = 0
        self._idle: OrderedDict[K, P] = OrderedDict()
        self._starting: set[K] = set()  # background starts under way
        self._changed = anyio.Condition()
        self._closed = False  # stopping: nothing is kept any more

    @property
    def idle(self) -> int:
        return sum(1 for process in self._idle.values() if process.alive)

    def has(self, key: K) -> bool:
        return key in self._idle

    def covered(self, key: K) -> bool:
        """Idle for ``key`` already, or being started for it in the background."""
        return key in self._idle or key in self._starting

    def take(self, key: K) -> P | None:
        """The idle process waiting for ``key``, now the caller's (still counted)."""
        return self._idle.pop(key, None)

    async def reserve(self, *, evict: bool) -> bool:
        """Count one more live process, for the caller to start (or ``release``).

        ``evict=False`` (background work): only if there is room now. ``evict=True`` (a
        request): make room by closing idle processes, or wait until one is gone.
        """
        async with self._changed:
            if self._closed and not evict:
                return False
            while self.live >= self.cap:
                if not evict:
                    return False
                if self._idle:
                    _, oldest = self._idle.popitem(last=False)
                    await oldest.aclose()
                    self.live -= 1
                else:
                    await self._changed.wait()
            self.live += 1
            return True

    async def release(self) -> None:
        """One counted process is gone (closed, or its start failed)."""
        with anyio.CancelScope(shield=True):
            async with self._changed:
                self.live -= 1
                self._changed.notify_all()

    async def close(self, process: P) -> None:
        try:
            await process.aclose()
        finally:
            await self.release()

    async def put(self, key: K, process: P) -> None:
        """A started process now waits for ``key``; only the ``keep`` newest stay."""
        if self._closed:  # started while the server stops
            await self.close(process)
            return
        evicted: list[P] = []
        # Shielded: cancelled here, the process would be in neither the pool nor closed.
        with anyio.CancelScope(shield=True):
            async with self._changed:
                previous = self._idle.pop(key, None)
                if previous is not None:
                    evicted.append(previous)
                self._idle[key] = process
                while len(self._idle) > self.keep:
                    evicted.append(self._idle.popitem(last=False)[1])
                self._changed.notify_all()  # a request waiting for room may evict it
        for old in evicted:
            await self.close(old)

    async def acquire(self, key: K, spawn: Callable[[K], Awaitable[P]]) -> tuple[P, bool]:
        """The idle one for ``key`` if it is alive (``True``: warm), else a new one (counted;
        ``close`` it when done)."""
        process = self.take(key)
        if process is not None and process.alive:
            return process, True
        if process is not None:
            await self.close(process)
        await self.reserve(evict=True)
        try:
            return await spawn(key), False
        except BaseException:
            await self.release()
            raise

    async def fill(self, key: K, spawn: Callable[[K], Awaitable[P]]) -> bool:
        """Start one for ``key`` in the background and keep it idle, if there is room and
        none is idle or starting for it; ``False`` when nothing was started."""
        if self.covered(key) or self._closed:
            return False
        self._starting.add(key)
        try:
            if not await self.reserve(evict=False):
                return False
            try:
                process = await spawn(key)
            except BaseException:
                await self.release()
                raise
            await self.put(key, process)
            return True
        finally:
            self._starting.discard(key)

    async def close_all(self) -> None:
        """Close the idle processes and every one that finishes starting from now on."""
        self._closed = True
        while self._idle:
            _, process = self._idle.popitem()
            await self.close(process)
