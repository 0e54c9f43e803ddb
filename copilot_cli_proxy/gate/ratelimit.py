"""RATE_LIMIT_MAX requests per RATE_LIMIT_WINDOW, per API key (or client IP when keys are off).

Built on ``limits``, the library under slowapi, used directly: slowapi's middleware is
either ``BaseHTTPMiddleware`` (breaks streaming) or an ASGI one that finds limits by
route-handler name, renders its own error body, and calls the synchronous storage on
the event loop, so every request would block the server on a Redis round trip. The
asyncio storages of ``limits`` take the same URIs (``memory://``, ``redis://``), and
the moving window has no burst at window edges.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.gate.clientip import ProxyTrust, client_ip
from copilot_cli_proxy.gate.respond import header_list, reject

NAMESPACE = "copilot-cli-proxy"
STORAGE_TIMEOUT_S = 2.0
# A storage outage is logged at most this often, not once per request.
OUTAGE_LOG_INTERVAL_S = 60.0


def build_storage(uri: str) -> Storage:
    """``memory://`` or ``redis://…`` → the asyncio storage of ``limits``."""
    scheme, _, rest = uri.partition("://")
    scheme = scheme.lower().removeprefix("async+")
    if scheme == "memory":
        storage = storage_from_string("async+memory://")
    else:
        storage = storage_from_string(
            f"async+{scheme}://{rest}",
            implementation="redispy",
            wrap_exceptions=True,
            socket_connect_timeout=STORAGE_TIMEOUT_S,
            socket_timeout=STORAGE_TIMEOUT_S,
        )
    assert isinstance(storage, Storage)
    return storage


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the oldest hit in the window expires

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset_at - now))

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }


class RequestRateLimiter:
    def __init__(self, max_requests: int, window_ms: int, storage: Storage) -> None:
        self.window_s = max(1, math.ceil(window_ms / 1000))
        self.item = RateLimitItemPerSecond(max_requests, self.window_s)
        self.storage = storage
        self._strategy = MovingWindowRateLimiter(storage)

    async def hit(self, key: str) -> Decision:
        allowed = await self._strategy.hit(self.item, NAMESPACE, key)
        stats = await self._strategy.get_window_stats(self.item, NAMESPACE, key)
        return Decision(allowed, self.item.amount, max(0, stats.remaining), stats.reset_time)

    async def check(self) -> bool:
        """Whether the storage answers (for start-up)."""
        try:
            return bool(await self.storage.check())
        except (StorageError, OSError, TimeoutError):
            return False


class RateLimitGate:
    """Counts each request against its key; 429 with Retry-After once the window is full.

    Runs after the auth gate, whose key id (``scope["state"]["key_id"]``) is the bucket.
    When the storage fails, requests pass (logged): an outage of Redis should not take
    the whole API down with it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RequestRateLimiter | None,
        exempt_paths: Collection[str],
        trust: ProxyTrust | None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.exempt_paths = frozenset(exempt_paths)
        self.trust = trust
        self._last_outage_log = -math.inf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.limiter
        if scope["type"] != "http" or limiter is None or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        key_id = state.get("key_id")
        bucket = f"key:{key_id}" if key_id else f"ip:{client_ip(scope, self.trust)}"
        try:
            decision = await limiter.hit(bucket)
        except (StorageError, OSError, TimeoutError) as exc:
            self._log_outage(exc)
            await self.app(scope, receive, send)
            return
        headers = decision.headers()
        if not decision.allowed:
            state["rate_limited"] = True
            wait = decision.retry_after(time.time())
            error = ProxyError(
                "rate_limit_exceeded",
                f"Rate limit reached: at most {decision.limit} requests per "
                f"{limiter.window_s} s for this {'API key' if key_id else 'address'}. "
                f"Retry after {wait} s.",
                retry_after=wait,
            )
            await reject(error, scope, receive, send, headers)
            return
        extra = header_list(headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _log_outage(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_outage_log >= OUTAGE_LOG_INTERVAL_S:
            self._last_outage_log = now
            logger.error("rate limit storage failed, letting requests through: {!r}", exc)
