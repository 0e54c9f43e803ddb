"""``copilot-cli-proxy login <backend-id>`` with a backends file: the backend's own CLI,
its CLI path and its environment allowlist; clear errors for everything else."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from copilot_cli_proxy.cli import main
from copilot_cli_proxy.config.backends_file import BackendSpec
from copilot_cli_proxy.ops.backend_login import login_backend, login_file_backend
from copilot_cli_proxy.settings import Settings


def recording_cli(tmp_path: Path, name: str, exit_code: int = 0) -> Path:
    """An executable that records its argv and environment, then exits with ``exit_code``."""
    record = tmp_path / f"{name}.json"
    script = tmp_path / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv, 'env': dict(os.environ)}}, open({str(record)!r}, 'w'))\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(0o755)
    return script


def recorded(cli: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli.with_name(cli.name + ".json").read_text())
    return data


def backends_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backends.toml"
    path.write_text(text)
    return path


@pytest.fixture
def servers_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the server's environment may hold: the login must pass on only what fits."""
    monkeypatch.setenv("API_KEY", "proxy-secret")
    monkeypatch.setenv("WORK_TOKEN_FILE", "/etc/work-token")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", "/srv/claude-work")
    monkeypatch.setenv("COPILOT_GITHUB_TOKEN", "github_pat_other_backend")


def test_a_claude_backend_runs_its_clis_login_with_its_path_and_allowlist(
    tmp_path: Path, servers_env: None
) -> None:
    cli = recording_cli(tmp_path, "claude-work", exit_code=0)
    spec = BackendSpec(
        id="work", kind="claude-cli", env=("WORK_TOKEN_FILE",), options={"cli_path": str(cli)}
    )
    out = io.StringIO()
    assert login_backend(spec, Settings(), out, ["--console"]) == 0
    run = recorded(cli)
    assert run["argv"] == [str(cli), "auth", "login", "--console"]
    env = run["env"]
    assert env["WORK_TOKEN_FILE"] == "/etc/work-token", "the entry's env reaches its CLI"
    assert env["CLAUDE_CONFIG_DIR"] == "/srv/claude-work", "so does its kind's own variable"
    assert "API_KEY" not in env, "the server's own secret never does"
    assert "COPILOT_GITHUB_TOKEN" not in env, "nor another kind's token"
    text = out.getvalue()
    assert "Logging the claude CLI of backend 'work' in" in text
    assert f"runs:       {cli} auth login --console" in text
    assert "/srv/claude-work" in text


def test_a_copilot_backend_runs_copilot_login_and_names_its_own_command(
    tmp_path: Path, servers_env: None
) -> None:
    cli = recording_cli(tmp_path, "copilot-gh", exit_code=4)
    spec = BackendSpec(id="gh", kind="copilot-cli", options={"cli_path": str(cli)})
    out = io.StringIO()
    assert login_backend(spec, Settings(), out, ["--device-code"]) == 4, "the CLI's exit code"
    run = recorded(cli)
    assert run["argv"] == [str(cli), "login", "--device-code"]
    assert run["env"]["COPILOT_GITHUB_TOKEN"] == "github_pat_other_backend"
    assert "WORK_TOKEN_FILE" not in run["env"], "only what this entry names"
    assert "copilot-cli-proxy login gh -- --device-code" in out.getvalue()
    assert "Done." not in out.getvalue()


def test_a_backend_whose_cli_is_missing_says_where_its_path_is_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = BackendSpec(
        id="work", kind="claude-cli", options={"cli_path": str(tmp_path / "none" / "claude")}
    )
    assert login_backend(spec, Settings(), io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "backend 'work': the claude CLI was not found" in err
    assert "cli_path in BACKENDS_FILE" in err


def test_an_unknown_id_lists_the_files_backends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = backends_file(
        tmp_path,
        '[[backend]]\nid = "gh"\nkind = "copilot-cli"\n\n'
        '[[backend]]\nid = "work"\nkind = "claude-cli"\n',
    )
    settings = Settings(backends_file=str(path))
    assert login_file_backend("claude", settings) == 2
    err = capsys.readouterr().err
    assert f"login 'claude': {path} has no backend with that id; its backends: gh, work" in err


def test_a_broken_file_is_named_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = backends_file(tmp_path, '[[backend]]\nid = "gh"\nkind = "gemini-cli"\n')
    assert login_file_backend("gh", Settings(backends_file=str(path))) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "key 'kind' must be one of" in err


def test_arguments_for_a_cli_are_refused_by_a_backend_without_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = BackendSpec(id="up", kind="openai", options={"base_url": "http://127.0.0.1:9"})
    assert login_backend(spec, Settings(state_dir=str(tmp_path)), io.StringIO(), ["-x"]) == 2
    assert "runs no CLI: arguments after -- are not used (-x)" in capsys.readouterr().err


def test_with_a_file_the_command_logs_in_the_backend_of_that_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers_env: None
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    cli = recording_cli(tmp_path, "claude-bin")
    path = backends_file(
        tmp_path,
        f'[[backend]]\nid = "claude"\nkind = "claude-cli"\ncli_path = "{cli}"\n'
        'env = ["WORK_TOKEN_FILE"]\n',
    )
    # CLAUDE_CLI_PATH would be today's claude; the file's entry wins.
    monkeypatch.setenv("CLAUDE_CLI_PATH", str(tmp_path / "not-this-one"))
    assert main(["login", "--backends-file", str(path), "claude"]) == 0
    assert recorded(cli)["env"]["WORK_TOKEN_FILE"] == "/etc/work-token"


def test_without_a_file_login_copilot_still_uses_todays_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BACKENDS_FILE", raising=False)
    cli = recording_cli(tmp_path, "copilot-today", exit_code=0)
    monkeypatch.setenv("COPILOT_CLI_PATH", str(cli))
    monkeypatch.setenv("API_KEY", "proxy-secret")
    assert main(["login", "copilot", "--", "--device-code"]) == 0
    run = recorded(cli)
    assert run["argv"] == [str(cli), "login", "--device-code"]
    assert "API_KEY" not in run["env"]
    assert run["env"]["HOME"] == os.environ["HOME"]
    assert "Logging the copilot CLI in for copilot-cli-proxy." in capsys.readouterr().out
