"""Where copilot's login comes from, BYOK for both runners, and one answer for a classic PAT."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot_cli_proxy.backends.copilot_auth import (
    LOGIN_HINT,
    byok_enabled,
    byok_model,
    classic_pat_variable,
    login_problem,
    not_logged_in,
    parse_provider_headers,
    provider_from_env,
    stored_login_state,
)
from copilot_cli_proxy.backends.copilot_output import CopilotOutputParser
from copilot_cli_proxy.errors import ProxyError

# What copilot 1.0.102 says with COPILOT_GITHUB_TOKEN=ghp_… (observed): one-shot on stderr,
# headless as the session error of the first turn.
ONE_SHOT_CLASSIC_PAT = """Error: Classic Personal Access Tokens (ghp_) are not supported by Copilot.

The COPILOT_GITHUB_TOKEN environment variable contains a classic PAT.
Please use a Fine-Grained Personal Access Token or another authentication method.
"""
HEADLESS_NO_TOKEN = (
    "Execution failed: InvalidArg, No GitHub OAuth token or Copilot HMAC key provided"
)
CLASSIC = {"COPILOT_GITHUB_TOKEN": "ghp_" + "a" * 36}


def test_no_byok_without_a_base_url() -> None:
    env = {"COPILOT_PROVIDER_TYPE": "anthropic", "COPILOT_PROVIDER_API_KEY": "k"}
    assert provider_from_env(env) is None
    assert not byok_enabled(env)
    assert byok_model({"COPILOT_MODEL": "m"}) is None


def test_provider_from_the_one_shot_variables() -> None:
    env = {
        "COPILOT_PROVIDER_BASE_URL": "http://127.0.0.1:9/v1",
        "COPILOT_PROVIDER_TYPE": "azure",
        "COPILOT_PROVIDER_API_KEY": "key",
        "COPILOT_PROVIDER_BEARER_TOKEN": "bearer",
        "COPILOT_PROVIDER_WIRE_API": "responses",
        "COPILOT_PROVIDER_TRANSPORT": "websockets",
        "COPILOT_PROVIDER_MODEL_ID": "gpt-5.4",
        "COPILOT_PROVIDER_WIRE_MODEL": "my-deployment",
        "COPILOT_PROVIDER_MAX_PROMPT_TOKENS": "1000",
        "COPILOT_PROVIDER_MAX_OUTPUT_TOKENS": "not a number",
        "COPILOT_PROVIDER_AZURE_API_VERSION": "2024-10-21",
        "COPILOT_PROVIDER_HEADERS": "X-One: 1\nX-Two: a: b",
        "COPILOT_PROVIDER_API_KEY_COMMAND": "print-key",
    }
    assert provider_from_env(env) == {
        "type": "azure",
        "baseUrl": "http://127.0.0.1:9/v1",
        "apiKey": "key",
        "apiKeyCommand": "print-key",
        "bearerToken": "bearer",
        "wireApi": "responses",
        "transport": "websockets",
        "modelId": "gpt-5.4",
        "wireModel": "my-deployment",
        "maxPromptTokens": 1000,
        "headers": {"X-One": "1", "X-Two": "a: b"},
        "azure": {"apiVersion": "2024-10-21"},
    }


def test_provider_type_defaults_to_openai_like_the_cli() -> None:
    assert provider_from_env({"COPILOT_PROVIDER_BASE_URL": "http://x"}) == {
        "type": "openai",
        "baseUrl": "http://x",
    }


@pytest.mark.parametrize(
    ("text", "headers"),
    [
        ("", {}),
        ("A: 1", {"A": "1"}),
        ("A: 1\\nB: 2", {"A": "1", "B": "2"}),
        ("no colon\n: no name\nC:3", {"C": "3"}),
    ],
)
def test_provider_headers(text: str, headers: dict[str, str]) -> None:
    assert parse_provider_headers(text) == headers


def test_byok_model_is_copilot_model_then_the_provider_model_id() -> None:
    base = {"COPILOT_PROVIDER_BASE_URL": "http://x"}
    assert byok_model({**base, "COPILOT_MODEL": "a", "COPILOT_PROVIDER_MODEL_ID": "b"}) == "a"
    assert byok_model({**base, "COPILOT_PROVIDER_MODEL_ID": "b"}) == "b"
    assert byok_model(base) is None


def test_classic_pat_only_when_it_is_the_token_the_cli_uses() -> None:
    assert classic_pat_variable(CLASSIC) == "COPILOT_GITHUB_TOKEN"
    assert classic_pat_variable({"GH_TOKEN": "ghp_x"}) == "GH_TOKEN"
    # the first set variable wins, as in the CLI
    assert (
        classic_pat_variable({"COPILOT_GITHUB_TOKEN": "github_pat_x", "GH_TOKEN": "ghp_x"}) is None
    )
    assert classic_pat_variable({}) is None


def test_login_problem_names_the_variable_never_its_value() -> None:
    problem = login_problem(CLASSIC)
    assert "COPILOT_GITHUB_TOKEN" in problem and "classic" in problem
    assert CLASSIC["COPILOT_GITHUB_TOKEN"] not in problem
    assert "copilot-cli-proxy login copilot" in problem
    assert login_problem({}) == LOGIN_HINT


def test_classic_pat_gets_one_answer_from_both_runners() -> None:
    """Regression: a classic PAT gave 502 "retry" in one-shot (its stderr was not read as
    a login failure) and 503 "not logged in" in persistent."""
    problem = login_problem(CLASSIC)
    with pytest.raises(ProxyError) as one_shot:
        CopilotOutputParser(problem).finish(1, ONE_SHOT_CLASSIC_PAT, Path("/nonexistent"))
    with pytest.raises(ProxyError) as headless:
        CopilotOutputParser(problem).feed(
            {"type": "session.error", "data": {"errorType": "query", "message": HEADLESS_NO_TOKEN}}
        )
    for caught in (one_shot, headless):
        assert (caught.value.code, caught.value.status) == ("cli_not_logged_in", 503)
        assert caught.value.message == problem
        assert caught.value.headers()["x-should-retry"] == "false"
    assert not_logged_in(CLASSIC).message == problem


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.json").write_text(text)
    return home


@pytest.mark.parametrize(
    ("env", "config", "state"),
    [
        ({"COPILOT_PROVIDER_BASE_URL": "http://x"}, None, True),
        ({"GH_TOKEN": "github_pat_x"}, None, True),
        (CLASSIC, '{"loggedInUsers": [{"login": "x"}]}', False),
        ({}, '// managed\n{"loggedInUsers": [{"host": "h", "login": "x"}]}', True),
        ({}, '{"firstLaunchAt": "2026-01-01"}', False),
        ({}, None, False),
        ({}, "{not json", None),
    ],
)
def test_stored_login_state(
    tmp_path: Path, env: dict[str, str], config: str | None, state: bool | None
) -> None:
    home = tmp_path / ".copilot"
    if config is not None:
        write_config(home, config)
    assert stored_login_state({"HOME": str(tmp_path), **env}, home) is state


def test_a_github_cli_login_cannot_be_told_apart_without_a_run(tmp_path: Path) -> None:
    gh = tmp_path / ".config" / "gh"
    gh.mkdir(parents=True)
    (gh / "hosts.yml").write_text("github.com:\n  user: x\n")
    assert stored_login_state({"HOME": str(tmp_path)}, tmp_path / ".copilot") is None
