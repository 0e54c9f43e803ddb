"""The real copilot CLI through the server, both runners: what the operator chooses
(ALLOWED_TOOLS, REQUEST_TIMEOUT) and what a bad login looks like (a classic token).

A request that times out leaves no CLI process and no request dir; with ALLOWED_TOOLS
the model is offered exactly those tools; a classic ``ghp_`` token is the same
503 "not logged in" in both runners, also in /health.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.harness import ProxyServer, ask, start_server, wait_until
from tests.e2e.realcli import copilot_cache, real_server_env, start_real_server  # noqa: F401
from tests.e2e.test_real_copilot_security import transient_cli_processes
from tests.fakemodel.server import FakeModelApi

pytestmark = pytest.mark.real_cli

MODEL = "claude-sonnet-4.6"
CLASSIC_TOKEN = "ghp_" + "x" * 36
RUNNERS = ["oneshot", "persistent"]


def session_dirs(server: ProxyServer) -> list[Path]:
    return [p for p in server.request_dirs() if not p.name.startswith("req-copilot-home-")]


@pytest.fixture(scope="module")
def api() -> Iterator[FakeModelApi]:
    fake = FakeModelApi().start()
    try:
        yield fake
    finally:
        fake.stop()


def serve(server: ProxyServer, runner: str) -> Iterator[tuple[str, ProxyServer]]:
    try:
        yield runner, server
    finally:
        server.stop()


def empty_home(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp(name)
    (tmp / "home").mkdir()
    return tmp, tmp / "home"


@pytest.fixture(scope="module", params=RUNNERS)
def chosen(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    api: FakeModelApi,
    copilot_cache: Path,  # noqa: F811
) -> Iterator[tuple[str, ProxyServer]]:
    runner = str(request.param)
    tmp, home = empty_home(tmp_path_factory, f"chosen-{runner}")
    choices = {"ALLOWED_TOOLS": "view", "REQUEST_TIMEOUT": "10000"}
    server = start_real_server(tmp, "copilot", runner, api, home, copilot_cache, **choices)
    yield from serve(server, runner)


@pytest.fixture(scope="module", params=RUNNERS)
def classic(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    api: FakeModelApi,
    copilot_cache: Path,  # noqa: F811
) -> Iterator[tuple[str, ProxyServer]]:
    """No BYOK: the CLI has only a classic personal access token to log in with."""
    runner = str(request.param)
    tmp, home = empty_home(tmp_path_factory, f"classic-{runner}")
    env = real_server_env("copilot", runner, api, home, copilot_cache)
    for name in [n for n in env if n.startswith("COPILOT_PROVIDER_")] + ["COPILOT_OFFLINE"]:
        env.pop(name, None)
    env["COPILOT_GITHUB_TOKEN"] = CLASSIC_TOKEN  # first in precedence: the one the CLI uses
    yield from serve(start_server(tmp, env, ready_timeout=90.0), runner)


def test_allowed_tools_are_the_only_tools_offered(
    chosen: tuple[str, ProxyServer], api: FakeModelApi
) -> None:
    _, server = chosen
    mark = len(api.model_calls())
    answer = server.client().chat.completions.create(model=MODEL, messages=ask("hi"))
    assert answer.choices[0].message.content == api.default_text
    calls = api.model_calls()[mark:]
    assert calls and all(call.tool_names == ["view"] for call in calls), [
        call.tool_names for call in calls
    ]


def test_a_timed_out_request_leaves_nothing_behind(
    chosen: tuple[str, ProxyServer], api: FakeModelApi
) -> None:
    runner, server = chosen
    # Past REQUEST_TIMEOUT (10 s), yet short enough that the fake's handler is done
    # before the module ends (stopping the fake waits for it).
    api.delay_s = 20.0
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            server.client().chat.completions.create(model=MODEL, messages=ask("slow answer"))
        assert caught.value.status_code == 504
    finally:
        api.delay_s = 0.0
    assert wait_until(lambda: not transient_cli_processes(server), 15), transient_cli_processes(
        server
    )

    def dirs_settled() -> bool:
        if runner == "oneshot":
            return not server.request_dirs()
        ready = httpx.get(server.url + "/health").json()["sessions_ready"]
        return len(session_dirs(server)) == ready

    assert wait_until(dirs_settled, 15), server.request_dirs()
    answer = server.client().chat.completions.create(model=MODEL, messages=ask("and now?"))
    assert answer.choices[0].message.content == api.default_text


def test_a_classic_token_is_not_logged_in_in_both_runners(
    classic: tuple[str, ProxyServer],
) -> None:
    """Regression: a classic ghp_ token gave 502 "retry" in one-shot and 503 "not logged
    in" in persistent."""
    _, server = classic
    with pytest.raises(openai.APIStatusError) as caught:
        server.client().chat.completions.create(model=MODEL, messages=ask("hi"))
    error = caught.value
    assert error.status_code == 503
    assert error.response.headers["x-should-retry"] == "false"
    body = error.body
    assert isinstance(body, dict) and body["code"] == "cli_not_logged_in"
    assert "COPILOT_GITHUB_TOKEN holds a classic personal access token" in body["message"]
    assert CLASSIC_TOKEN not in body["message"]

    def health_says_so() -> bool:
        health = httpx.get(server.url + "/health").json()
        return health["logged_in"] is False and any(
            "classic personal access token" in problem for problem in health["problems"]
        )

    assert wait_until(health_says_so, 30), httpx.get(server.url + "/health").json()
