from __future__ import annotations

import os
from pathlib import Path

import pytest

from copilot_cli_proxy.backends.cli_backend import cli_env, parse_json_line, resolve_cli


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"type": "result"}', {"type": "result"}),
        ('{"t": "한 😀"}'.encode(), {"t": "한 😀"}),
        (b'  {"a": 1}\r', {"a": 1}),
    ],
)
def test_parse_json_line(raw: bytes, expected: dict[str, object]) -> None:
    assert parse_json_line(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"Not logged in \xc2\xb7 Please run /login",
        b"[1, 2]",
        b'"text"',
        b"42",
        b"null",
        b'{"a": ',
        b'{"a": "\xff"}',
        b"\x1b[2K\x1b[1G",
    ],
)
def test_lines_that_are_not_a_json_object_are_none(raw: bytes) -> None:
    assert parse_json_line(raw) is None


def test_absurdly_nested_json_is_none_not_a_crash() -> None:
    assert parse_json_line(b"[" * 100_000 + b"]" * 100_000) is None
    assert parse_json_line(b'{"a":' * 100_000 + b"1" + b"}" * 100_000) is None


def test_cli_env_drops_the_servers_secrets_and_turns_colour_off() -> None:
    env = cli_env(
        {
            "PATH": "/bin",
            "HOME": "/home/u",
            "API_KEY": "sk-proxy",
            "API_KEYS": "a,b",
            "RATE_LIMIT_STORAGE_URI": "redis://x",
            "GH_TOKEN": "gho_x",
        }
    )
    assert env == {"PATH": "/bin", "HOME": "/home/u", "GH_TOKEN": "gho_x", "NO_COLOR": "1"}


SERVER_ENV = {
    "PATH": "/bin",
    "API_KEY": "sk-proxy",
    "GH_TOKEN": "gho_x",
    "COPILOT_GITHUB_TOKEN": "github_pat_x",
    "ANTHROPIC_API_KEY": "sk-ant",
    "TEAM_VAR": "t",
}


def test_each_cli_kind_sees_only_its_own_credentials() -> None:
    copilot = cli_env(SERVER_ENV, kind="copilot-cli")
    claude = cli_env(SERVER_ENV, kind="claude-cli", extra_names=("TEAM_VAR",))
    assert set(copilot) == {"PATH", "GH_TOKEN", "COPILOT_GITHUB_TOKEN", "NO_COLOR"}
    assert set(claude) == {"PATH", "ANTHROPIC_API_KEY", "TEAM_VAR", "NO_COLOR"}


def test_cli_env_defaults_to_the_process_environment() -> None:
    env = cli_env()
    assert env["NO_COLOR"] == "1"
    assert env.get("PATH") == os.environ.get("PATH")


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_resolve_cli_configured_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = tmp_path / "bin" / "copilot"
    cli.parent.mkdir()
    cli.write_text("")
    monkeypatch.chdir(tmp_path)
    assert resolve_cli("bin/copilot", "copilot", tmp_path) == str(cli)
    assert resolve_cli(str(cli), "copilot", tmp_path) == str(cli)


def test_resolve_cli_configured_path_that_does_not_exist_is_not_found(tmp_path: Path) -> None:
    """A missing COPILOT_CLI_PATH must make /health say so, not report the CLI found."""
    assert resolve_cli(str(tmp_path / "nonexistent" / "copilot"), "copilot", tmp_path) is None


def test_resolve_cli_configured_name_is_looked_up_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = executable(tmp_path / "bin" / "my-copilot")
    monkeypatch.setenv("PATH", str(found.parent))
    assert resolve_cli("my-copilot", "copilot", tmp_path) == str(found)
    assert resolve_cli("missing-copilot", "copilot", tmp_path) is None


def test_resolve_cli_prefers_path_then_the_projects_node_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert resolve_cli("", "claude", tmp_path) is None
    local = executable(tmp_path / "node_modules" / ".bin" / "claude")
    assert resolve_cli("", "claude", tmp_path) == str(local)
    on_path = executable(tmp_path / "bin" / "claude")
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert resolve_cli("", "claude", tmp_path) == str(on_path)
