"""device-code logins: the RFC 8628 flow, the token store, refresh tokens, one refresh at a time."""

from __future__ import annotations

import io
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from copilot_cli_proxy.backends.openai_http import OpenAIUpstreamBackend
from copilot_cli_proxy.backends.upstream_auth import DeviceCodeCredentials, StoredToken
from copilot_cli_proxy.errors import Outcome, ProxyError
from tests.fakeupstream.server import FakeUpstream
from tests.unit.backends.upstream.helpers import make_backend, relay_all

CLIENT_ID = "Ov23liOperatorsOwnApp"


def device_auth(fake: FakeUpstream) -> dict[str, str]:
    return {
        "type": "device-code",
        "client_id": CLIENT_ID,
        "device_authorization_url": f"{fake.url}/login/device/code",
        "token_url": f"{fake.url}/login/oauth/access_token",
        "scope": "models:read",
    }


@pytest.fixture
async def oauth(fake: FakeUpstream, tmp_path: Path) -> AsyncIterator[OpenAIUpstreamBackend]:
    fake.require_auth = True
    made = make_backend(
        fake, tmp_path / "state", auth=device_auth(fake), headers={"X-Team": "docs"}
    )
    try:
        yield made
    finally:
        await made.stop()


def credentials(backend: OpenAIUpstreamBackend) -> DeviceCodeCredentials:
    assert isinstance(backend.credentials, DeviceCodeCredentials)
    return backend.credentials


def store_token(
    backend: OpenAIUpstreamBackend, fake: FakeUpstream, *, expires_in: float | None
) -> StoredToken:
    """A login as `copilot-cli-proxy login` leaves it, with tokens the fake knows."""
    access, refresh = fake.issue()
    now = time.time()
    token = StoredToken(
        access_token=access,
        client_id=CLIENT_ID,
        token_url=f"{fake.url}/login/oauth/access_token",
        refresh_token=refresh,
        expires_at=None if expires_in is None else now + expires_in,
        obtained_at=now - 3600,
    )
    credentials(backend).store.save(token)
    return token


class Sleeps:
    """Records every wait the login asks for, and waits not at all."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize("errors_status", [400, 200])  # RFC 8628 / GitHub's way
async def test_login_waits_on_pending_slows_down_then_stores_the_token_0600(
    fake: FakeUpstream, oauth: OpenAIUpstreamBackend, errors_status: int
) -> None:
    fake.device_errors_status = errors_status
    fake.tokens.device_script.extend(["authorization_pending", "slow_down"])
    out, sleeps = io.StringIO(), Sleeps()
    assert await oauth.login(out, sleep=sleeps) == 0
    assert sleeps.waits == [1, 1, 6]  # slow_down: 5 s more from then on
    text = out.getvalue()
    assert f"{fake.url}/device" in text and "WDJB-MJHT" in text
    path = credentials(oauth).store.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    (device_request,) = fake.requests_to("/login/device/code")
    assert device_request.body == {"client_id": CLIENT_ID, "scope": "models:read"}
    assert device_request.headers["accept"] == "application/json"
    assert "x-team" not in device_request.headers
    # The server uses the stored login at once.
    await relay_all(oauth)
    token = credentials(oauth).store.load()
    assert (
        token is not None
        and fake.chat_requests()[-1].authorization == f"Bearer {token.access_token}"
    )
    assert token.access_token not in text


@pytest.mark.parametrize(
    ("step", "said"),
    [("expired_token", "the code expired"), ("access_denied", "was denied"), ("bad", "bad")],
)
async def test_login_ends_on_expired_denied_or_another_error_without_a_token(
    fake: FakeUpstream, oauth: OpenAIUpstreamBackend, step: str, said: str
) -> None:
    fake.tokens.device_script.extend(["authorization_pending", step])
    out = io.StringIO()
    assert await oauth.login(out, sleep=Sleeps()) == 1
    assert said in out.getvalue()
    assert not credentials(oauth).store.path.exists()
    assert fake.tokens.device_polls == 2


async def test_without_a_login_requests_get_503_with_the_login_command(
    fake: FakeUpstream, oauth: OpenAIUpstreamBackend
) -> None:
    with pytest.raises(ProxyError) as caught:
        await relay_all(oauth)
    assert (caught.value.status, caught.value.code) == (503, "backend_not_logged_in")
    assert "copilot-cli-proxy login up" in caught.value.message
    health = oauth.health().as_json()
    assert health["logged_in"] is False and health["problems"]
    assert fake.chat_requests() == []


async def test_a_login_written_by_another_process_is_picked_up_without_restart(
    fake: FakeUpstream, oauth: OpenAIUpstreamBackend, tmp_path: Path
) -> None:
    with pytest.raises(ProxyError):
        await relay_all(oauth)
    other = make_backend(fake, tmp_path / "state", auth=device_auth(fake))  # same STATE_DIR
    try:
        assert await other.login(io.StringIO(), sleep=Sleeps()) == 0
    finally:
        await other.stop()
    assert await relay_all(oauth)
    assert oauth.health().as_json()["logged_in"] is True


async def test_a_token_near_expiry_is_refreshed_before_the_request(
    fake: FakeUpstream, oauth: OpenAIUpstreamBackend
) -> None:
    old = store_token(oauth, fake, expires_in=5)  # inside the refresh margin
    await relay_all(oauth)
    assert fake.tokens.refreshes == 1
    (chat,) = fake.chat_requests()
    renewed = credentials(oauth).store.load()
    assert renewed is not None and renewed.access_token != old.access_token
    assert chat.authorization == f"Bearer {renewed.access_token}"
    assert stat.S_IMODE(credentials(oauth).store.path.stat().st_mode) == 0o600
    # The operator's headers are the upstream's business, not the token endpoint's.
    (refresh,) = fake.requests_to("/login/oauth/access_token")
    assert chat.headers["x-team"] == "docs" and "x-team" not in refresh.headers
    assert "authorization" not in refresh.headers


async def test_a_401_leads_to_one_refresh_and_a_retry(
    fake: FakeUpstream, oauth: OpenAIUpstreamBackend
) -> None:
    old = store_token(oauth, fake, expires_in=3600)
    fake.revoke(old.access_token)
    chunks = await relay_all(oauth)
    assert chunks and fake.tokens.refreshes == 1
    first, retry = fake.chat_requests()
    assert first.authorization == f"Bearer {old.access_token}"
    assert retry.authorization != first.authorization
    assert first.body == retry.body


async def test_a_401_after_the_refresh_is_backend_auth_failed(
    fake: FakeUpstream, oauth: OpenAIUpstreamBackend
) -> None:
    store_token(oauth, fake, expires_in=3600)
    fake.refuse_all = True
    with pytest.raises(ProxyError) as caught:
        await relay_all(oauth)
    assert (caught.value.status, caught.value.code) == (503, "backend_auth_failed")
    assert caught.value.outcome is Outcome.AUTH_FAILED
    assert fake.tokens.refreshes == 1 and len(fake.chat_requests()) == 2


async def test_a_revoked_refresh_token_means_log_in_again(
    fake: FakeUpstream, oauth: OpenAIUpstreamBackend
) -> None:
    token = store_token(oauth, fake, expires_in=1)
    fake.tokens.refresh.discard(str(token.refresh_token))
    with pytest.raises(ProxyError) as caught:
        await relay_all(oauth)
    assert caught.value.code == "backend_not_logged_in"
    assert "refresh failed (invalid_grant)" in " ".join(oauth.health().as_json()["problems"])


async def test_concurrent_requests_share_a_single_refresh(
    fake: FakeUpstream, oauth: OpenAIUpstreamBackend
) -> None:
    store_token(oauth, fake, expires_in=1)
    fake.refresh_delay_s = 0.2  # every request finds the refresh in flight
    results: list[Any] = []

    async def one() -> None:
        results.append(await relay_all(oauth))

    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(one)
    assert len(results) == 12 and all(results)
    assert fake.tokens.refreshes == 1
    assert len({r.authorization for r in fake.chat_requests()}) == 1


async def test_a_login_for_another_oauth_app_is_not_used(
    fake: FakeUpstream, oauth: OpenAIUpstreamBackend
) -> None:
    token = store_token(oauth, fake, expires_in=None)
    credentials(oauth).store.save(
        StoredToken(token.access_token, "another-client", token.token_url)
    )
    with pytest.raises(ProxyError) as caught:
        await relay_all(oauth)
    assert "another OAuth app" in caught.value.message


async def test_the_token_store_never_shows_a_token_in_its_repr(
    fake: FakeUpstream, oauth: OpenAIUpstreamBackend
) -> None:
    token = store_token(oauth, fake, expires_in=None)
    assert token.access_token not in repr(token)
    assert str(token.refresh_token) not in repr(token)


async def test_bearer_login_checks_the_variable(
    fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend(fake, tmp_path, preset="github-models", base_url=f"{fake.url}/inference")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    try:
        out = io.StringIO()
        assert await backend.login(out) == 1
        assert "GITHUB_TOKEN" in out.getvalue() and "Models: read" in out.getvalue()
        monkeypatch.setenv("GITHUB_TOKEN", "github_pat_x")
        assert await backend.login(io.StringIO()) == 0
    finally:
        await backend.stop()


async def test_no_auth_needs_no_login(backend: OpenAIUpstreamBackend) -> None:
    out = io.StringIO()
    assert await backend.login(out) == 0
    assert "needs no login" in out.getvalue()
    assert backend.health().as_json()["logged_in"] is None
