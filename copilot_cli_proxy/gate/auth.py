"""API keys: ``Authorization: Bearer <key>`` or ``x-api-key: <key>``, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.gate.auththrottle import AuthThrottle
from copilot_cli_proxy.gate.clientip import ProxyTrust, client_ip
from copilot_cli_proxy.gate.respond import reject

KEY_HEADERS = ("authorization", "x-api-key")


def key_id(key: str) -> str:
    """A short, stable name for a key, for logs and rate limits; the key cannot be read back."""
    return "key_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]


def presented_keys(headers: Headers) -> list[str]:
    """Every key the request offers. A bare ``Authorization: <key>`` is not one."""
    found: list[str] = []
    for value in headers.getlist("authorization"):
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            found.append(token.strip())
    found.extend(value.strip() for value in headers.getlist("x-api-key") if value.strip())
    return found


class KeyRing:
    """The configured keys, kept only as digests."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [(hashlib.sha256(k.encode()).digest(), key_id(k)) for k in keys]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def match(self, candidate: str) -> str | None:
        """The id of the key ``candidate`` is, or None.

        Digests have one length whatever was sent, and every key is compared
        without stopping at a match: the time taken tells nothing about the keys.
        """
        digest = hashlib.sha256(candidate.encode("utf-8", "surrogateescape")).digest()
        matched: str | None = None
        for known, ident in self._digests:
            if hmac.compare_digest(digest, known):
                matched = ident
        return matched


class ApiKeyGate:
    """Turns away requests without a valid key; records the key's id in ``scope["state"]``.

    With a throttle, an address past its failed attempts gets 429 for every attempt,
    a right key included: otherwise the 429s would tell a guesser nothing and the
    guessing would go on at full speed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: Iterable[str],
        open_paths: Collection[str],
        throttle: AuthThrottle | None = None,
        trust: ProxyTrust | None = None,
    ) -> None:
        self.app = app
        self.ring = KeyRing(keys)
        self.open_paths = frozenset(open_paths)
        self.throttle = throttle
        self.trust = trust

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.ring or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        address = client_ip(scope, self.trust)
        throttle = self.throttle
        if throttle is not None:
            wait = await throttle.wait_for(address)
            if wait is not None:
                state["rate_limited"] = True
                error = ProxyError(
                    "too_many_auth_failures",
                    f"Too many failed API key attempts from this address (at most "
                    f"{throttle.max_failures} per {throttle.window_s} s). Retry after {wait} s.",
                    retry_after=wait,
                )
                await reject(error, scope, receive, send)
                return
        offered = presented_keys(Headers(scope=scope))
        matched = None
        for candidate in offered:
            matched = self.ring.match(candidate) or matched
        if matched is None:
            state["auth_failed"] = True
            if throttle is not None:
                await throttle.failed(address)
            message = (
                "Incorrect API key provided."
                if offered
                else "Missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
            )
            error = ProxyError("invalid_api_key", message)
            await reject(error, scope, receive, send, {"WWW-Authenticate": "Bearer"})
            return
        state["key_id"] = matched
        await self.app(scope, receive, send)
