"""A CLI child gets an allowlist of the server's environment, never its secrets."""

from __future__ import annotations

from copilot_cli_proxy.runtime.childenv import child_environment

SERVER_ENV = {
    "PATH": "/usr/bin",
    "HOME": "/home/op",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "HTTPS_PROXY": "http://proxy:3128",
    "XDG_CACHE_HOME": "/home/op/.cache",
    "API_KEY": "sk-server-secret",
    "API_KEYS": "a,b",
    "RATE_LIMIT_STORAGE_URI": "redis://:hunter2@redis:6379/0",
    "COPILOT_GITHUB_TOKEN": "github_pat_x",
    "GH_TOKEN": "gho_x",
    "ANTHROPIC_API_KEY": "sk-ant-x",
    "CLAUDE_CODE_OAUTH_TOKEN": "oauth-x",
    "AWS_SECRET_ACCESS_KEY": "aws",
    "MY_TEAM_VAR": "team",
}


def test_copilot_child_gets_base_and_its_own_variables_only() -> None:
    env = child_environment(SERVER_ENV, prefixes=("COPILOT_",), names=("GH_TOKEN", "GITHUB_TOKEN"))
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/op",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HTTPS_PROXY": "http://proxy:3128",
        "XDG_CACHE_HOME": "/home/op/.cache",
        "COPILOT_GITHUB_TOKEN": "github_pat_x",
        "GH_TOKEN": "gho_x",
    }


def test_claude_child_never_sees_the_server_key_redis_or_copilot_token() -> None:
    env = child_environment(SERVER_ENV, prefixes=("CLAUDE_", "ANTHROPIC_"))
    for secret in (
        "API_KEY",
        "API_KEYS",
        "RATE_LIMIT_STORAGE_URI",
        "GH_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert secret not in env
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-x"
    assert env["CLAUDE_CODE_OAUTH_TOKEN"] == "oauth-x"


def test_names_from_the_backend_entry_and_overrides_apply() -> None:
    env = child_environment(
        SERVER_ENV, names=("MY_TEAM_VAR", "NOT_SET"), overrides={"NO_COLOR": "1", "HOME": "/x"}
    )
    assert env["MY_TEAM_VAR"] == "team"
    assert "NOT_SET" not in env
    assert env["NO_COLOR"] == "1" and env["HOME"] == "/x"
