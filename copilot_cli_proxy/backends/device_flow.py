"""``copilot-cli-proxy login <backend-id>`` for ``device-code``: the RFC 8628 device grant.

Asks the operator's own OAuth app for a device code, prints where to enter the user
code, then polls the token endpoint: ``authorization_pending`` waits, ``slow_down``
waits 5 s longer from then on, ``expired_token`` and ``access_denied`` end the login.
The token is stored 0600 (``TokenStore``) where the running server finds it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import httpx

from copilot_cli_proxy.backends.upstream_auth import StoredToken, TokenStore, token_from_response
from copilot_cli_proxy.backends.upstream_config import DeviceCodeAuth
from copilot_cli_proxy.errors import clip

GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL_S = 5  # RFC 8628 §3.2, when the server names none
DEFAULT_EXPIRES_S = 900
SLOW_DOWN_STEP_S = 5  # RFC 8628 §3.5

Sleep = Callable[[float], Awaitable[None]]
JSON_ACCEPT = {"Accept": "application/json"}  # GitHub answers form-encoded without it


class LoginFailed(Exception):
    """The login ended without a token; the message says why, for the operator."""


def _number(value: Any, default: int) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return int(value)
    return default


async def _post_json(client: httpx.AsyncClient, url: str, data: dict[str, str]) -> dict[str, Any]:
    try:
        response = await client.post(url, data=data, headers=JSON_ACCEPT)
    except httpx.HTTPError as exc:
        raise LoginFailed(
            f"cannot reach {url}: {clip(str(exc) or type(exc).__name__, 200)}"
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LoginFailed(f"{url} answered HTTP {response.status_code} without a JSON object")
    # RFC 8628 errors come as 400 with {"error"}; GitHub sends them with 200. Both are read.
    if not response.is_success and "error" not in body:
        raise LoginFailed(f"{url} answered HTTP {response.status_code}")
    return body


async def device_login(
    client: httpx.AsyncClient,
    auth: DeviceCodeAuth,
    store: TokenStore,
    out: TextIO,
    *,
    sleep: Sleep,
    clock: Callable[[], float] = time.monotonic,
) -> StoredToken:
    """Run the whole flow; raise ``LoginFailed`` with the reason."""
    request = {"client_id": auth.client_id}
    if auth.scope:
        request["scope"] = auth.scope
    grant = await _post_json(client, auth.device_authorization_url, request)
    if "error" in grant:
        raise LoginFailed(_described(grant, "the device authorization request was refused"))
    device_code, user_code = grant.get("device_code"), grant.get("user_code")
    # "verification_url" is what some providers (Google) call it.
    verification = grant.get("verification_uri") or grant.get("verification_url")
    if not all(isinstance(v, str) and v for v in (device_code, user_code, verification)):
        raise LoginFailed("the device authorization answer lacks device_code, user_code or URL")
    assert isinstance(device_code, str)
    interval = max(1, _number(grant.get("interval"), DEFAULT_INTERVAL_S))
    expires_in = _number(grant.get("expires_in"), DEFAULT_EXPIRES_S)
    deadline = clock() + expires_in
    print(f"Open {verification} and enter the code: {user_code}", file=out)
    complete = grant.get("verification_uri_complete")
    if isinstance(complete, str) and complete:
        print(f"(or open {complete}, which carries the code)", file=out)
    print(f"Waiting for the authorization (the code is valid {expires_in // 60} min)…", file=out)
    out.flush()
    poll = {
        "grant_type": GRANT_DEVICE_CODE,
        "device_code": device_code,
        "client_id": auth.client_id,
    }
    while True:
        await sleep(interval)
        if clock() >= deadline:
            raise LoginFailed("the code expired before it was entered; run the login again")
        answer = await _post_json(client, auth.token_url, poll)
        error = answer.get("error")
        if error is None and "access_token" in answer:
            try:
                token = token_from_response(answer, auth, time.time())
            except ValueError as exc:
                raise LoginFailed(str(exc)) from None
            store.save(token)
            return token
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            # From now on, every poll waits 5 s longer; a server may name its own interval.
            interval = max(interval + SLOW_DOWN_STEP_S, _number(answer.get("interval"), 0))
            continue
        if error == "expired_token":
            raise LoginFailed("the code expired before it was entered; run the login again")
        if error == "access_denied":
            raise LoginFailed("the authorization was denied")
        raise LoginFailed(_described(answer, "the token endpoint refused the login"))


def _described(answer: dict[str, Any], fallback: str) -> str:
    error = answer.get("error")
    description = answer.get("error_description")
    if not error:
        return fallback
    text = f"{fallback}: {clip(str(error), 80)}"
    return f"{text} ({clip(str(description), 300)})" if description else text
