"""The credential an HTTP backend sends upstream: none, a bearer token, or an OAuth login.

- ``bearer``: the token is read from its environment variable on every request, so a
  rotated token is used at once and the value is never kept anywhere else.
- ``device-code``: the token from ``copilot-cli-proxy login <backend-id>`` (see
  ``device_flow.py``), stored 0600 under STATE_DIR. Its ``refresh_token`` renews it
  shortly before ``expires_in`` runs out, and once after a 401; one refresh at a time.

No credential value ever goes into a log line, an error, or health.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
import httpx
from loguru import logger

from copilot_cli_proxy.backends.upstream_config import BearerAuth, DeviceCodeAuth
from copilot_cli_proxy.backends.upstream_errors import error_from_exception
from copilot_cli_proxy.errors import Outcome, ProxyError, clip

GRANT_REFRESH = "refresh_token"
# Renew this long before expiry (capped at a tenth of the token's life): a request that
# starts just before expiry still finishes with a valid token.
REFRESH_MARGIN_S = 60.0


def not_logged_in(backend_id: str, why: str) -> ProxyError:
    return ProxyError(
        "backend_not_logged_in",
        f"Backend {backend_id!r} is not logged in: {why}. The server's operator must run: "
        f"copilot-cli-proxy login {backend_id}",
        outcome=Outcome.AUTH_FAILED,
    )


@dataclass(frozen=True, slots=True)
class StoredToken:
    access_token: str
    client_id: str
    token_url: str
    refresh_token: str | None = None
    expires_at: float | None = None  # wall-clock seconds: the file outlives the process
    obtained_at: float = 0.0
    scope: str = ""

    def __repr__(self) -> str:  # a token must not reach a log through a repr
        return f"StoredToken(client_id={self.client_id!r}, expires_at={self.expires_at!r})"

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def due_for_refresh(self, now: float) -> bool:
        if self.expires_at is None or self.refresh_token is None:
            return False
        lifetime = max(self.expires_at - self.obtained_at, 0.0)
        return now >= self.expires_at - min(REFRESH_MARGIN_S, lifetime / 10)


def token_from_response(
    data: Mapping[str, Any], auth: DeviceCodeAuth, now: float, previous_refresh: str | None = None
) -> StoredToken:
    """A token endpoint's success answer (RFC 6749 §5.1), checked."""
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise ValueError("the token endpoint's answer has no access_token")
    expires_in = data.get("expires_in")
    expires_at = None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        expires_at = now + float(expires_in)
    refresh = data.get("refresh_token")
    return StoredToken(
        access_token=access,
        client_id=auth.client_id,
        token_url=auth.token_url,
        # A server may keep the refresh token unchanged and not repeat it (RFC 6749 §6).
        refresh_token=refresh if isinstance(refresh, str) and refresh else previous_refresh,
        expires_at=expires_at,
        obtained_at=now,
        scope=str(data.get("scope") or auth.scope),
    )


class TokenStore:
    """One JSON file, 0600 in a 0700 directory, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime_ns: int | None = None

    def changed_on_disk(self) -> bool:
        try:
            return self.path.stat().st_mtime_ns != self._mtime_ns
        except OSError:
            return self._mtime_ns is not None

    def load(self) -> StoredToken | None:
        try:
            self._mtime_ns = self.path.stat().st_mtime_ns
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return StoredToken(**data)
        except FileNotFoundError:
            self._mtime_ns = None
            return None
        except (OSError, ValueError, TypeError) as exc:
            logger.warning("cannot read the login in {}: {}", self.path, type(exc).__name__)
            return None

    def save(self, token: StoredToken) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        # Created 0600 from the start: the token is never readable by others, even briefly.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(token), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        self._mtime_ns = self.path.stat().st_mtime_ns


class Credentials(Protocol):
    def logged_in(self) -> bool | None:
        """None where there is nothing to log in to."""

    def problems(self) -> list[str]: ...

    async def authorization(self) -> str | None:
        """The Authorization header value; raises ``backend_not_logged_in``."""

    async def renew(self, rejected: str | None) -> bool:
        """After a 401/403 with ``rejected``: True if a retry may now succeed."""


class NoCredentials:
    def logged_in(self) -> bool | None:
        return None

    def problems(self) -> list[str]:
        return []

    async def authorization(self) -> str | None:
        return None

    async def renew(self, rejected: str | None) -> bool:
        return False


class BearerCredentials:
    def __init__(
        self, backend_id: str, auth: BearerAuth, environ: Mapping[str, str] | None = None
    ) -> None:
        self.backend_id = backend_id
        self.token_env = auth.token_env
        self._environ = os.environ if environ is None else environ

    def _value(self) -> str:
        return self._environ.get(self.token_env, "").strip()

    def logged_in(self) -> bool | None:
        return bool(self._value())

    def problems(self) -> list[str]:
        return [] if self._value() else [f"{self.token_env} is not set"]

    async def authorization(self) -> str | None:
        token = self._value()
        if not token:
            raise not_logged_in(self.backend_id, f"{self.token_env} is not set")
        return f"Bearer {token}"

    async def renew(self, rejected: str | None) -> bool:
        # Nothing to refresh; a retry only helps if the variable was rotated meanwhile.
        token = self._value()
        return bool(token) and f"Bearer {token}" != rejected


class DeviceCodeCredentials:
    def __init__(
        self, backend_id: str, auth: DeviceCodeAuth, store: TokenStore, client: httpx.AsyncClient
    ) -> None:
        self.backend_id = backend_id
        self.auth = auth
        self.store = store
        self._client = client
        self._token: StoredToken | None = None
        self._loaded = False
        self._lock = anyio.Lock()
        self.refreshes = 0  # how many refresh requests were sent (health, tests)
        self.last_problem: str | None = None

    def _current(self) -> StoredToken | None:
        """The token in memory, re-read when a login (another process) rewrote the file."""
        if not self._loaded or self.store.changed_on_disk():
            self._loaded = True
            token = self.store.load()
            if token is not None and (
                token.client_id != self.auth.client_id or token.token_url != self.auth.token_url
            ):
                self.last_problem = "the stored login is for another OAuth app; log in again"
                token = None
            if token is not None:
                self.last_problem = None
            self._token = token
        return self._token

    def logged_in(self) -> bool | None:
        token = self._current()
        if token is None:
            return False
        return token.refresh_token is not None or not token.expired(time.time())

    def problems(self) -> list[str]:
        token = self._current()
        if token is None:
            return [
                self.last_problem or f"not logged in (copilot-cli-proxy login {self.backend_id})"
            ]
        if token.expired(time.time()) and token.refresh_token is None:
            return [f"the login expired (copilot-cli-proxy login {self.backend_id})"]
        return [self.last_problem] if self.last_problem else []

    async def authorization(self) -> str | None:
        token = self._current()
        if token is None:
            raise not_logged_in(self.backend_id, self.last_problem or "no stored login")
        now = time.time()
        if token.due_for_refresh(now):
            token = await self._refresh(token)
        elif token.expired(now):
            raise not_logged_in(self.backend_id, "the login expired and cannot be refreshed")
        return f"Bearer {token.access_token}"

    async def renew(self, rejected: str | None) -> bool:
        token = self._current()
        if token is None:
            return False
        if rejected != f"Bearer {token.access_token}":
            return True  # renewed meanwhile (another request's refresh, or a new login)
        if token.refresh_token is None:
            return False
        await self._refresh(token)
        return True

    async def _refresh(self, stale: StoredToken) -> StoredToken:
        """Single flight: whoever waited for the lock finds the new token and uses it."""
        async with self._lock:
            current = self._token
            if current is not None and current.access_token != stale.access_token:
                return current
            assert stale.refresh_token is not None
            self.refreshes += 1
            try:
                response = await self._client.post(
                    self.auth.token_url,
                    data={
                        "grant_type": GRANT_REFRESH,
                        "refresh_token": stale.refresh_token,
                        "client_id": self.auth.client_id,
                    },
                    headers={"Accept": "application/json"},
                )
                data = response.json()
            except httpx.HTTPError as exc:
                raise error_from_exception(
                    self.backend_id, exc, self._client.timeout.read or 0
                ) from None
            except ValueError:
                data = {}
            if response.is_success and isinstance(data, dict) and "access_token" in data:
                token = token_from_response(data, self.auth, time.time(), stale.refresh_token)
                self.store.save(token)
                self._token = token
                self.last_problem = None
                logger.info("backend {}: access token refreshed", self.backend_id)
                return token
            error = data.get("error") if isinstance(data, dict) else None
            self.last_problem = (
                f"the token refresh failed ({clip(str(error or response.status_code), 80)})"
            )
            logger.warning("backend {}: {}", self.backend_id, self.last_problem)
            if error in ("invalid_grant", "invalid_token", "unauthorized_client"):
                raise not_logged_in(self.backend_id, "the login was revoked or has run out")
            raise ProxyError(
                "backend_auth_failed",
                f"Backend {self.backend_id!r} could not renew its login: {self.last_problem}.",
                outcome=Outcome.AUTH_FAILED,
            )
