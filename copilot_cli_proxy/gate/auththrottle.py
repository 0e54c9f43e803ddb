"""Failed API keys per client address: past AUTH_FAILURE_MAX in AUTH_FAILURE_WINDOW, 429.

Without it a client can try keys as fast as the server answers. The count is kept in
this process (``limits``' memory storage, as the rate limiter can): a throttle that
needed Redis to be up would fail open exactly when it matters.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

NAMESPACE = "copilot-cli-proxy-auth"


class AuthThrottle:
    def __init__(self, max_failures: int, window_ms: int) -> None:
        self.max_failures = max_failures
        self.window_s = max(1, math.ceil(window_ms / 1000))
        self.item = RateLimitItemPerSecond(max_failures, self.window_s)
        self._strategy = MovingWindowRateLimiter(MemoryStorage())

    async def wait_for(self, address: str) -> int | None:
        """Seconds ``address`` must wait before its next attempt, or None if it may try."""
        if await self._strategy.test(self.item, NAMESPACE, address):
            return None
        stats = await self._strategy.get_window_stats(self.item, NAMESPACE, address)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def failed(self, address: str) -> None:
        await self._strategy.hit(self.item, NAMESPACE, address)
