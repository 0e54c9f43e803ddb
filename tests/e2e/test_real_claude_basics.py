"""The basics with the REAL claude CLI through the server, both runners, over the fake
model API: what the fake CLI stood in for until now (streaming, usage, system text,
history, model names, disconnect and timeout cleanup), checked at the model's end."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest

from copilot_cli_proxy.backends.claude_cli import ClaudeCliBackend
from copilot_cli_proxy.settings import Settings
from tests.e2e.harness import require_real_cli, wait_until
from tests.e2e.realclaude import (
    RUNNERS,
    Stage,
    leaks,
    main_calls,
    module_stage,
    stage,
    system_beyond_claude_base,
)

pytestmark = pytest.mark.real_cli

SLOW_MODEL_S = 12.0  # long enough to act while the CLI waits for the model


@pytest.fixture(scope="module", params=RUNNERS)
def claude_stage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stage]:
    yield from module_stage(request, tmp_path_factory)


@contextmanager
def post(stage: Stage, body: dict[str, object]) -> Iterator[socket.socket]:
    """A chat request on a raw connection, closed on exit whatever the server did."""
    payload = json.dumps(body).encode()
    url = httpx.URL(stage.server.url)
    with socket.create_connection((url.host, url.port or 80), timeout=60) as sock:
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        sock.sendall(head.encode() + payload)
        yield sock


def test_client_disconnect_leaves_no_process_and_no_dir(claude_stage: Stage) -> None:
    claude_stage.assert_settled()
    start = len(claude_stage.api.calls)
    claude_stage.api.delay_s = SLOW_MODEL_S
    body = {
        "model": "sonnet",
        "stream": True,
        "messages": [
            {"role": "system", "content": "A request the client gives up on."},
            {"role": "user", "content": "Take your time."},
        ],
    }
    try:
        with post(claude_stage, body):
            assert wait_until(lambda: main_calls(claude_stage.calls_since(start)), 60)
        # the client went away while the CLI waits for the model (before any byte)
    finally:
        claude_stage.api.delay_s = 0.0
    claude_stage.assert_settled()


def test_streaming_text_usage_and_system_text(claude_stage: Stage) -> None:
    start = len(claude_stage.api.calls)
    system = "You are terse. 시스템 🎉"
    chunks = list(
        claude_stage.server.client().chat.completions.create(
            model="sonnet",
            messages=[
                {"role": "system", "content": system},
                {"role": "user", "content": "Say hello."},
            ],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == claude_stage.api.default_text
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1, "streamed"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    (main,) = main_calls(claude_stage.calls_since(start))
    assert system_beyond_claude_base(main) == system, "the system text went as system"
    assert system not in main.conversation_text
    assert main.conversation_text.endswith("Say hello.")
    assert main.tool_names == []
    assert main.body["model"] == "claude-sonnet-5", "the alias resolved by the CLI"


def test_non_streaming_history_reaches_the_model_in_order(claude_stage: Stage) -> None:
    start = len(claude_stage.api.calls)
    result = claude_stage.server.client().chat.completions.create(
        model="sonnet",
        messages=[
            {"role": "system", "content": "Remember names."},
            {"role": "user", "content": "My name is Ada. 🎉"},
            {"role": "assistant", "content": "Nice to meet you, Ada."},
            {"role": "user", "content": "What is my name?"},
        ],
    )
    assert result.choices[0].message.content == claude_stage.api.default_text
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None and result.usage.total_tokens > 0
    (main,) = main_calls(claude_stage.calls_since(start))
    conversation = main.conversation_text
    turns = ["My name is Ada. 🎉", "Nice to meet you, Ada.", "What is my name?"]
    positions = [conversation.find(turn) for turn in turns]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)
    assert system_beyond_claude_base(main) == "Remember names."


def test_models_list_aliases_and_full_names(claude_stage: Stage) -> None:
    client = claude_stage.server.client()
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "sonnet"
    assert {"default", "opus[1m]", "haiku", "claude-sonnet-5"} <= set(ids)
    assert any(i.startswith("claude-haiku") for i in ids)
    assert client.models.retrieve("claude-sonnet-5").id == "claude-sonnet-5"


def test_a_full_model_name_reaches_the_model_as_it_is(claude_stage: Stage) -> None:
    model = "claude-sonnet-4-5"  # not in the initialize reply; the CLI takes it
    start = len(claude_stage.api.calls)
    result = claude_stage.server.client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    assert result.choices[0].message.content == claude_stage.api.default_text
    (main,) = main_calls(claude_stage.calls_since(start))
    assert main.body["model"] == model


def test_health_says_logged_in(claude_stage: Stage) -> None:
    with claude_stage.server.http() as http:
        health = http.get("/health").json()
    assert health["logged_in"] is True  # ANTHROPIC_API_KEY counts as logged in
    assert health["problems"] == []


def test_everything_was_clean(claude_stage: Stage) -> None:
    claude_stage.assert_settled()
    assert leaks(claude_stage.api.calls) == []


# -- with a server of their own ---------------------------------------------------------------


@pytest.mark.parametrize("runner", RUNNERS)
def test_timeout_leaves_no_process_and_no_dir(tmp_path: Path, runner: str) -> None:
    with stage(tmp_path, runner, REQUEST_TIMEOUT="5000") as slow:
        slow.api.delay_s = 8.0  # past the timeout; not much longer: stopping the API waits
        with pytest.raises(openai.APIStatusError) as caught:
            slow.server.client().chat.completions.create(
                model="sonnet",
                messages=[
                    {"role": "system", "content": "A request that times out."},
                    {"role": "user", "content": "hi"},
                ],
            )
        assert caught.value.status_code == 504
        slow.assert_settled()


def test_warm_runner_survives_a_broken_temp_dir_and_heals(tmp_path: Path) -> None:
    """Regression (issue 8, item 5): a failed background start ended the task group and
    every later request failed until a restart."""
    with stage(tmp_path, "persistent") as warm, warm.server.http() as http:
        assert wait_until(lambda: http.get("/health").json()["warm_processes"] == 1, 60)
        shutil.rmtree(warm.base)
        warm.base.write_text("a file where the temp dir should be")
        messages = [
            {"role": "system", "content": "A key of its own: its process starts now."},
            {"role": "user", "content": "hi"},
        ]
        client = warm.server.client()
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="sonnet", messages=messages)  # type: ignore[arg-type]
        assert caught.value.status_code == 503
        assert "TEMP_DIR_BASE" in caught.value.message
        assert wait_until(
            lambda: any("warm process" in p for p in http.get("/health").json()["problems"]), 30
        )

        warm.base.unlink()
        assert wait_until(lambda: http.get("/health").json()["problems"] == [], 60)
        result = client.chat.completions.create(model="sonnet", messages=messages)  # type: ignore[arg-type]
        assert result.choices[0].message.content == warm.api.default_text
        warm.assert_settled()


async def test_login_state_of_a_fresh_home_is_not_logged_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    backend = ClaudeCliBackend(
        Settings(
            service="claude",
            claude_cli_path=require_real_cli("claude"),
            temp_dir_base=str(tmp_path / "t"),
        )
    )
    assert await backend.check_login() is False
    health = backend.health()
    assert (health.logged_in, health.state) == (False, "degraded")
    assert any("copilot-cli-proxy login claude" in p for p in health.problems)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a-key")
    assert await backend.check_login() is True
    assert backend.health().problems == ()
