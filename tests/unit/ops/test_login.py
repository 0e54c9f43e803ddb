from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from copilot_cli_proxy.ops.login import (
    build_login_argv,
    config_dir,
    exit_status,
    login_environment,
    login_preamble,
    run_login,
    tokens_set,
)
from copilot_cli_proxy.settings import Settings


def test_copilot_login_argv_passes_the_operators_flags_on() -> None:
    assert build_login_argv("copilot", "/x/copilot") == ["/x/copilot", "login"]
    assert build_login_argv("copilot", "/x/copilot", ["--device-code"]) == [
        "/x/copilot",
        "login",
        "--device-code",
    ]


def test_claude_login_is_the_auth_login_subcommand() -> None:
    assert build_login_argv("claude", "/x/claude", ["--console"]) == [
        "/x/claude",
        "auth",
        "login",
        "--console",
    ]


def test_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="gemini"):
        build_login_argv("gemini", "/x/gemini")


@pytest.mark.parametrize(
    ("service", "env", "expected"),
    [
        ("copilot", {"HOME": "/home/op"}, "/home/op/.copilot"),
        ("copilot", {"HOME": "/home/op", "COPILOT_HOME": "/srv/copilot"}, "/srv/copilot"),
        ("claude", {"HOME": "/home/op"}, "/home/op/.claude"),
        ("claude", {"HOME": "/home/op", "CLAUDE_CONFIG_DIR": "/srv/claude"}, "/srv/claude"),
    ],
)
def test_config_dir_follows_the_clis_own_variables(
    service: str, env: dict[str, str], expected: str
) -> None:
    assert config_dir(service, env) == Path(expected)


def test_tokens_are_named_in_precedence_order_and_empty_ones_ignored() -> None:
    env = {"GITHUB_TOKEN": "a", "COPILOT_GITHUB_TOKEN": "b", "GH_TOKEN": "  "}
    assert tokens_set("copilot", env) == ["COPILOT_GITHUB_TOKEN", "GITHUB_TOKEN"]
    assert tokens_set("claude", {"ANTHROPIC_API_KEY": "k"}) == ["ANTHROPIC_API_KEY"]


def test_preamble_names_home_config_dir_and_the_headless_ways() -> None:
    env = {"HOME": "/home/op", "GH_TOKEN": "ghu_secret_value"}
    text = login_preamble("copilot", ["/x/copilot", "login"], env)
    assert "HOME:       /home/op" in text
    assert "/home/op/.copilot" in text
    assert "/x/copilot login" in text
    for name in ("COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN", "--device-code"):
        assert name in text
    assert "--with-token" in text
    assert "GH_TOKEN is set" in text
    assert "ghu_secret_value" not in text, "a token value is never printed"


def test_claude_preamble_points_to_setup_token() -> None:
    text = login_preamble("claude", ["/x/claude", "auth", "login"], {"HOME": "/h"})
    assert "claude setup-token" in text
    assert "CLAUDE_CODE_OAUTH_TOKEN" in text
    assert "ANTHROPIC_API_KEY" in text
    assert "/h/.claude" in text


def test_exit_status_of_a_signalled_cli_is_128_plus_the_signal() -> None:
    assert exit_status(0) == 0
    assert exit_status(3) == 3
    assert exit_status(-2) == 130


def test_login_environment_is_the_servers_cli_environment() -> None:
    env = login_environment({"HOME": "/h", "API_KEY": "proxy-secret", "GH_TOKEN": "t"})
    assert env["HOME"] == "/h"
    assert env["GH_TOKEN"] == "t", "the CLI needs its own token"
    assert "API_KEY" not in env, "the proxy's own keys never reach the CLI"


def recording_cli(tmp_path: Path, exit_code: int) -> Path:
    """An executable that records its argv and environment, then exits with ``exit_code``."""
    record = tmp_path / "record.json"
    script = tmp_path / "fake-cli"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv, 'env': dict(os.environ)}}, open({str(record)!r}, 'w'))\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(0o755)
    return script


def test_run_login_runs_the_resolved_cli_and_returns_its_exit_code(tmp_path: Path) -> None:
    cli = recording_cli(tmp_path, 3)
    out = io.StringIO()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    code = run_login(
        "copilot", Settings(copilot_cli_path=str(cli)), ["--device-code"], env=env, out=out
    )
    assert code == 3
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["argv"] == [str(cli), "login", "--device-code"]
    assert record["env"]["HOME"] == str(tmp_path)
    assert str(tmp_path / ".copilot") in out.getvalue()
    assert "Done." not in out.getvalue()


def test_run_login_success_points_to_doctor(tmp_path: Path) -> None:
    cli = recording_cli(tmp_path, 0)
    out = io.StringIO()
    code = run_login(
        "claude", Settings(claude_cli_path=str(cli)), env={"HOME": str(tmp_path)}, out=out
    )
    assert code == 0
    assert json.loads((tmp_path / "record.json").read_text())["argv"][1:] == ["auth", "login"]
    assert "copilot-cli-proxy doctor" in out.getvalue()


def test_run_login_without_the_cli_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(copilot_cli_path=str(tmp_path / "missing" / "copilot"))
    assert run_login("copilot", settings, env={}, out=io.StringIO()) == 1
    assert "COPILOT_CLI_PATH" in capsys.readouterr().err
    settings = Settings(claude_cli_path="no-such-claude-binary")
    assert run_login("claude", settings, env={}, out=io.StringIO()) == 1
    assert "npm install @anthropic-ai/claude-code" in capsys.readouterr().err


def test_a_term_for_the_wrapper_reaches_the_cli(tmp_path: Path) -> None:
    """`timeout`, a closing session…: the login CLI must not outlive copilot-cli-proxy."""
    started = tmp_path / "started"
    script = tmp_path / "slow-cli"
    script.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, time\n"
        f"pathlib.Path({str(started)!r}).write_text('x')\n"
        "time.sleep(30)\n"
    )
    script.chmod(0o755)

    def terminate_when_started() -> None:
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=terminate_when_started)
    killer.start()
    began = time.monotonic()
    code = run_login(
        "copilot", Settings(copilot_cli_path=str(script)), env=dict(os.environ), out=io.StringIO()
    )
    killer.join()
    assert code == 128 + signal.SIGTERM
    assert time.monotonic() - began < 15
    assert signal.getsignal(signal.SIGTERM) == before, "the previous handler is back"
