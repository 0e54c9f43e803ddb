"""The connection to one HTTP upstream: a pooled httpx client that sends with the credential.

``send`` returns the upstream's 2xx response, still open, or raises the mapped
``ProxyError``. Two retries, each at most once, where the upstream cannot have acted:
after a 401/403 with a renewed credential, and when a kept-alive connection turned out
to be closed before the upstream saw the request.
"""

from __future__ import annotations

import logging

import anyio
import httpx
from loguru import logger

from copilot_cli_proxy import __version__
from copilot_cli_proxy.backends.upstream_auth import Credentials, NoCredentials
from copilot_cli_proxy.backends.upstream_config import UpstreamConfig
from copilot_cli_proxy.backends.upstream_errors import (
    MAX_ERROR_BODY,
    error_from_exception,
    error_from_response,
)
from copilot_cli_proxy.errors import Outcome, ProxyError

CONNECT_TIMEOUT_S = 10.0
REDACTED = "[REDACTED]"
# A closed kept-alive connection shows as one of these, raised before any response.
STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)

# httpx logs every request at INFO and httpcore each step of it at DEBUG; our logging
# setup lets every record through to loguru (root level 0), so each request made about
# ten records, a fifth of the relay's CPU time. The chat route logs each request already.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class UpstreamClient:
    def __init__(self, backend_id: str, config: UpstreamConfig, keep_alive: int) -> None:
        self.backend_id = backend_id
        self.config = config
        # The operator's headers go to the upstream only, not to an OAuth token endpoint
        # (another host, perhaps) that shares this client: they are added per request.
        self.http = httpx.AsyncClient(
            headers={"User-Agent": f"copilot-cli-proxy/{__version__}"},
            timeout=httpx.Timeout(
                config.timeout_s, connect=min(config.timeout_s, CONNECT_TIMEOUT_S), pool=None
            ),
            # The gateway's slots bound the requests in flight; the pool keeps as many alive.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=keep_alive),
            follow_redirects=False,  # a redirect must not carry the token to another host
        )
        self.credentials: Credentials = NoCredentials()
        self.auth_problem: str | None = None
        self._urls: dict[str, httpx.URL] = {}  # parsed once: a third of building a request

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.http.aclose()

    def connections(self) -> dict[str, int]:
        """Open upstream connections, and how many carry a request now."""
        # httpx does not expose its pool; read httpcore's, and report nothing if that moves.
        pool = getattr(getattr(self.http, "_transport", None), "_pool", None)
        found = list(getattr(pool, "connections", []))
        busy = sum(1 for c in found if not c.is_idle() and not c.is_closed())
        return {"open": sum(1 for c in found if not c.is_closed()), "busy": busy}

    async def send(
        self, method: str, url: str, *, content: bytes | None = None, accept: str | None = None
    ) -> httpx.Response:
        """The upstream's 2xx response, still open; else the mapped ``ProxyError``."""
        authorization = await self.credentials.authorization()
        for attempt in (1, 2):
            headers = dict(self.config.headers)
            if authorization:
                headers["Authorization"] = authorization
            if content is not None:
                headers["Content-Type"] = "application/json"
            if accept:
                headers["Accept"] = accept
            target = self._urls.get(url) or self._urls.setdefault(url, httpx.URL(url))
            request = self.http.build_request(method, target, content=content, headers=headers)
            try:
                response = await self._send_once(request)
            except httpx.HTTPError as exc:
                error = error_from_exception(self.backend_id, exc, self.config.timeout_s)
                raise self.failed(error, authorization) from None
            if response.is_success:
                self.auth_problem = None
                return response
            body = await self._error_body(response)
            status = response.status_code
            if status in (401, 403):
                if attempt == 1 and await self.credentials.renew(authorization):
                    authorization = await self.credentials.authorization()
                    continue
                self.auth_problem = f"the upstream refused the credential (HTTP {status})"
            error = error_from_response(self.backend_id, status, response.headers, body)
            raise self.failed(error, authorization)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.http.send(request, stream=True)
        except STALE_CONNECTION:
            # The upstream closed an idle kept-alive connection just as it was reused (its
            # keep-alive timer and ours race): it never read the request. A second try
            # gets another connection; a second failure is the upstream's.
            logger.debug(
                "backend {}: a kept-alive connection was closed; retrying", self.backend_id
            )
            return await self.http.send(request, stream=True)

    async def _error_body(self, response: httpx.Response) -> bytes:
        """At most MAX_ERROR_BODY of an error answer; the response is closed after."""
        body = b""
        try:
            async for piece in response.aiter_bytes():
                body += piece
                if len(body) >= MAX_ERROR_BODY:
                    break
        except httpx.HTTPError:
            pass  # the status alone still says what happened
        finally:
            await response.aclose()
        return body[:MAX_ERROR_BODY]

    def failed(self, error: ProxyError, authorization: str | None = None) -> ProxyError:
        """``error`` with no trace of the credential (an upstream may echo what it got),
        logged for the operator: the API client sees only the code and message."""
        token = (authorization or "").removeprefix("Bearer ").strip()
        if len(token) >= 8 and token in error.message:
            error.message = error.message.replace(token, REDACTED)
            error.args = (error.message,)
        rejected = error.outcome is Outcome.REJECTED  # the client's request, not the upstream
        logger.log(
            "INFO" if rejected else "WARNING",
            "backend {}: {} ({})",
            self.backend_id,
            error.message,
            error.outcome,
        )
        return error
