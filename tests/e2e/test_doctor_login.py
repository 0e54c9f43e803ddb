"""``copilot-cli-proxy doctor`` and ``login`` as an operator runs them: a process, its
screen and its exit code. Over the fake CLIs (logged in, logged out, missing), and over
the REAL copilot and claude from npm, which are not logged in on a test machine: the
doctor must say so and exit 1, and the login sub-commands we run must exist. Like the
contract tests, the real-CLI tests fail (not skip) in CI when the binaries are missing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from copilot_cli_proxy.ops.login import build_login_argv
from copilot_cli_proxy.settings import FIELDS
from tests.e2e.harness import (
    FAKE_CLI_ENV,
    FAKES,
    fake_env,
    free_port,
    pid_alive,
    start_server,
    wait_until,
)
from tests.e2e.harness import require_real_cli as require

# Credentials the machine might carry must not turn "not logged in" into a login.
CREDENTIAL_VARS = (
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "COPILOT_GITHUB_TOKEN",
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_OAUTH_TOKEN",
)
CLI_HOME_VARS = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "COPILOT_HOME", "CLAUDE_CONFIG_DIR")


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without credentials, CLI homes or proxy settings."""
    drop = {*CREDENTIAL_VARS, *CLI_HOME_VARS, *(spec.env for spec in FIELDS)}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("FAKE_")}
    env["HOME"] = str(home)
    env.update(extra)
    return env


def run_command(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copilot_cli_proxy", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def line_of(output: str, name: str) -> str:
    """The screen line of the check called ``name``."""
    for line in output.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[1].startswith(name + "  "):
            return line
    raise AssertionError(f"no {name!r} line in:\n{output}")


@pytest.fixture
def fakes_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    return base_env(
        home,
        COPILOT_CLI_PATH=str(FAKES / "copilot"),
        CLAUDE_CLI_PATH=str(FAKES / "claude"),
        PORT=str(free_port()),
        TEMP_DIR_BASE=str(tmp_path / "requests"),
        FAKE_CLI_PID_DIR=str(pid_dir),
        CLI_ENV=FAKE_CLI_ENV,
    )


# -- doctor over the fakes -----------------------------------------------------------------


def test_doctor_says_ready_when_everything_works(tmp_path: Path, fakes_env: dict[str, str]) -> None:
    result = run_command(["doctor"], tmp_path, fakes_env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "ok    copilot CLI" in line_of(out, "copilot CLI")
    assert "GitHub Copilot CLI 1.0.102" in line_of(out, "copilot CLI")
    assert "Logged in as fake-user" in line_of(out, "copilot login")
    assert "31 models, default gpt-5-mini among them" in line_of(out, "copilot models")
    assert "(not used: SERVICE=copilot)" in line_of(out, "claude login")
    assert "is free" in line_of(out, "port")
    assert out.rstrip().endswith("Ready.")
    assert result.stderr == "", "the screen is all the doctor prints"
    # The short-lived headless copilot it asked is gone: nothing of the doctor is left.
    pids = [int(p.name) for p in Path(fakes_env["FAKE_CLI_PID_DIR"]).iterdir()]
    assert not [pid for pid in pids if pid_alive(pid)]


def test_doctor_fails_when_the_used_cli_is_logged_out(
    tmp_path: Path, fakes_env: dict[str, str]
) -> None:
    env = {**fakes_env, "FAKE_CLI_LOGGED_OUT": "1", "SERVICE": "claude"}
    result = run_command(["doctor"], tmp_path, env)
    assert result.returncode == 1
    claude = line_of(result.stdout, "claude login")
    assert claude.split()[0] == "FAIL"
    assert "not logged in" in claude
    assert "copilot-cli-proxy login claude" in result.stdout
    copilot = line_of(result.stdout, "copilot login")
    assert copilot.split()[0] == "warn", "copilot is not used: only a warning"


def test_a_missing_cli_fails_only_when_it_is_the_one_used(
    tmp_path: Path, fakes_env: dict[str, str]
) -> None:
    env = {**fakes_env, "COPILOT_CLI_PATH": str(tmp_path / "nowhere" / "copilot")}
    result = run_command(["doctor"], tmp_path, env)
    assert result.returncode == 1
    line = line_of(result.stdout, "copilot CLI")
    assert line.split()[0] == "FAIL" and "no such executable" in line
    assert "copilot login" not in result.stdout, "nothing to ask without the CLI"

    result = run_command(["doctor", "--service", "claude"], tmp_path, env)
    assert result.returncode == 0, result.stdout
    assert line_of(result.stdout, "copilot CLI").split()[0] == "warn"


def test_doctor_lists_every_config_problem(tmp_path: Path, fakes_env: dict[str, str]) -> None:
    (tmp_path / ".env").write_text("MAX_QUEUE=lots\nSERVICE=claude\n")
    env = {**fakes_env, "PORT": "99999"}
    result = run_command(["doctor"], tmp_path, env)
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("  FAIL  config")]
    assert len(problems) == 2, result.stdout
    assert any("PORT" in line for line in problems)
    assert any("MAX_QUEUE" in line for line in problems)
    assert line_of(result.stdout, "claude CLI").split()[0] == "ok", ".env's SERVICE still applies"
    assert "  port " not in result.stdout, "no port check of a default nobody asked for"


def test_doctor_recognises_a_running_proxy_and_a_stranger_on_its_port(
    tmp_path: Path, fakes_env: dict[str, str]
) -> None:
    (tmp_path / "server").mkdir()
    server = start_server(tmp_path / "server", fake_env("copilot"))
    try:
        port = server.url.rsplit(":", 1)[1]
        result = run_command(["doctor", "--port", port], tmp_path, fakes_env)
        assert result.returncode == 0, result.stdout
        assert "taken by a running copilot-cli-proxy" in line_of(result.stdout, "port")
    finally:
        server.stop()
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = str(stranger.getsockname()[1])
        result = run_command(["doctor", "--port", port], tmp_path, fakes_env)
    assert result.returncode == 1
    assert "taken by another program" in line_of(result.stdout, "port")


def test_doctor_json(tmp_path: Path, fakes_env: dict[str, str]) -> None:
    env = {**fakes_env, "FAKE_CLI_LOGGED_OUT": "1"}
    result = run_command(["doctor", "--json"], tmp_path, env)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    login = next(c for c in data["checks"] if c["name"] == "copilot login")
    assert login["status"] == "fail"
    assert login["hint"].startswith("copilot-cli-proxy login copilot")


# -- the real CLIs, not logged in ----------------------------------------------------------


@pytest.fixture(scope="module")
def real_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One empty HOME for the module: copilot unpacks itself there once (~5 s)."""
    return tmp_path_factory.mktemp("home")


def real_env(home: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return base_env(
        home,
        COPILOT_CLI_PATH=require("copilot"),
        CLAUDE_CLI_PATH=require("claude"),
        PORT=str(free_port()),
        TEMP_DIR_BASE=str(tmp_path / "requests"),
        **extra,
    )


@pytest.mark.real_cli
@pytest.mark.parametrize("service", ["copilot", "claude"])
def test_doctor_on_a_machine_without_a_login(real_home: Path, tmp_path: Path, service: str) -> None:
    result = run_command(["doctor"], tmp_path, real_env(real_home, tmp_path, SERVICE=service))
    print(result.stdout)  # the screen, for the test log
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    copilot_login = line_of(out, "copilot login")
    assert "not logged in (auth.getStatus: Not authenticated)" in copilot_login
    claude_login = line_of(out, "claude login")
    assert "not logged in (claude auth status: loggedIn false)" in claude_login
    used, other = (
        (copilot_login, claude_login) if service == "copilot" else (claude_login, copilot_login)
    )
    assert used.split()[0] == "FAIL"
    assert other.split()[0] == "warn"
    assert f"copilot-cli-proxy login {service}" in out
    # Everything that works without a login is reported as working.
    assert "GitHub Copilot CLI 1.0.102" in line_of(out, "copilot CLI")
    assert "(Claude Code)" in line_of(out, "claude CLI")
    assert line_of(out, "copilot models").split()[0] == "ok"
    assert "default sonnet among them" in line_of(out, "claude models")
    assert out.rstrip().endswith("(1 warning).")


@pytest.mark.real_cli
def test_the_copilot_login_we_run_exists_with_the_flags_we_recommend(
    real_home: Path, tmp_path: Path
) -> None:
    argv = build_login_argv("copilot", require("copilot"), ["--help"])
    result = subprocess.run(
        argv, env=base_env(real_home), cwd=tmp_path, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: copilot login")
    for flag in ("--device-code", "--with-token", "--host", "COPILOT_GITHUB_TOKEN", "GH_TOKEN"):
        assert flag in result.stdout


@pytest.mark.real_cli
def test_the_claude_login_we_run_exists_and_so_does_setup_token(
    real_home: Path, tmp_path: Path
) -> None:
    cli = require("claude")
    env = base_env(real_home)
    result = subprocess.run(
        build_login_argv("claude", cli, ["--help"]),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: claude auth login")
    assert "--console" in result.stdout
    setup = subprocess.run(
        [cli, "setup-token", "--help"], env=env, capture_output=True, text=True, timeout=90
    )
    assert setup.returncode == 0
    assert "long-lived authentication token" in setup.stdout


@pytest.mark.real_cli
@pytest.mark.parametrize(
    ("service", "usage"),
    [("copilot", "Usage: copilot login"), ("claude", "Usage: claude auth login")],
)
def test_login_command_runs_the_real_cli_attached_and_returns_its_exit_code(
    real_home: Path, tmp_path: Path, service: str, usage: str
) -> None:
    env = real_env(real_home, tmp_path)
    result = run_command(["login", service, "--", "--help"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert f"Logging the {service} CLI in" in result.stdout
    assert f"HOME:       {real_home}" in result.stdout
    assert usage in result.stdout
    bad = run_command(["login", service, "--", "--no-such-flag"], tmp_path, env)
    assert bad.returncode != 0, "the CLI's own exit code comes back"


# -- a backends file: every backend by its id ----------------------------------------------


def write_backends(tmp_path: Path, copilot: str, claude: str, *, claude_env: str = "") -> Path:
    """A copilot backend "gh" and a claude backend "work", at the given CLI paths."""
    path = tmp_path / "backends.toml"
    path.write_text(
        f'[[backend]]\nid = "gh"\nkind = "copilot-cli"\ncli_path = "{copilot}"\n\n'
        f'[[backend]]\nid = "work"\nkind = "claude-cli"\nrunner = "oneshot"\n'
        f'cli_path = "{claude}"\nenv = [{claude_env}]\n'
    )
    return path


def test_doctor_lists_every_backend_of_the_file_by_id(
    tmp_path: Path, fakes_env: dict[str, str]
) -> None:
    # Only "work" lets its CLI see FAKE_CLI_LOGGED_OUT: only it is logged out.
    backends = write_backends(
        tmp_path, str(FAKES / "copilot"), str(FAKES / "claude"), claude_env='"FAKE_CLI_LOGGED_OUT"'
    )
    env = {**fakes_env, "BACKENDS_FILE": str(backends), "FAKE_CLI_LOGGED_OUT": "1"}
    result = run_command(["doctor"], tmp_path, env)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert f"{backends}: 2 backends (gh, work)" in line_of(out, "backends")
    assert "kind copilot-cli, runner persistent" in line_of(out, "gh backend")
    assert "kind claude-cli, runner oneshot" in line_of(out, "work backend")
    assert f"GitHub Copilot CLI 1.0.102 at {FAKES / 'copilot'}" in line_of(out, "gh CLI")
    assert line_of(out, "gh login").split()[0] == "ok"
    work = line_of(out, "work login")
    assert work.split()[0] == "FAIL" and "not logged in" in work
    assert "→ copilot-cli-proxy login work, or CLAUDE_CODE_OAUTH_TOKEN" in out
    assert "default gpt-5-mini among them" in line_of(out, "gh models")
    assert "default sonnet among them" in line_of(out, "work models")
    assert "copilot CLI" not in out and "claude login" not in out, "named by id only"
    assert "(not used" not in out, "every backend of the file is used"
    # The JSON has the same facts, one object per backend.
    data = json.loads(run_command(["doctor", "--json"], tmp_path, env).stdout)
    assert [(b["id"], b["logged_in"]) for b in data["backends"]] == [("gh", True), ("work", False)]
    assert data["backends"][1]["login_command"] == "copilot-cli-proxy login work"


def test_login_of_an_unknown_backend_id_lists_the_files_ids(
    tmp_path: Path, fakes_env: dict[str, str]
) -> None:
    backends = write_backends(tmp_path, str(FAKES / "copilot"), str(FAKES / "claude"))
    env = {**fakes_env, "BACKENDS_FILE": str(backends)}
    result = run_command(["login", "copilot"], tmp_path, env)
    assert result.returncode == 2
    assert f"{backends} has no backend with that id; its backends: gh, work" in result.stderr


def test_the_server_warns_at_start_up_with_the_backends_login_command(
    tmp_path: Path, fakes_env: dict[str, str]
) -> None:
    backends = write_backends(
        tmp_path,
        str(FAKES / "copilot"),
        str(FAKES / "claude"),
        claude_env='"FAKE_CLI_LOGGED_OUT", "FAKE_CLI_PID_DIR"',
    )
    (tmp_path / "server").mkdir()
    env = {"BACKENDS_FILE": str(backends), "FAKE_CLI_LOGGED_OUT": "1"}
    server = start_server(tmp_path / "server", env)
    try:
        warning = "backend work is not logged in"
        assert wait_until(lambda: warning in server.log(), 30), server.log()
        assert "`copilot-cli-proxy login work`" in server.log()
        with server.http() as http:
            health = http.get("/health").json()
        assert health["status"] == "degraded"
        work = next(b for b in health["backends"] if b["id"] == "work")
        assert work["logged_in"] is False
        assert any("copilot-cli-proxy login work" in p for p in work["problems"])
    finally:
        server.stop()
    assert server.log().count(warning) == 1, "once, not at every check"
    assert "copilot-cli-proxy login claude" not in server.log(), "the id, not the CLI's name"
    assert "backend gh is not logged in" not in server.log()


@pytest.mark.real_cli
def test_doctor_with_a_backends_file_over_the_real_clis(real_home: Path, tmp_path: Path) -> None:
    backends = write_backends(tmp_path, require("copilot"), require("claude"))
    env = real_env(real_home, tmp_path, BACKENDS_FILE=str(backends))
    result = run_command(["doctor"], tmp_path, env)
    print(result.stdout)  # the screen, for the test log
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "GitHub Copilot CLI 1.0.102" in line_of(out, "gh CLI")
    assert "(Claude Code)" in line_of(out, "work CLI")
    gh = line_of(out, "gh login")
    assert gh.split()[0] == "FAIL" and "not logged in (auth.getStatus: Not authenticated)" in gh
    work = line_of(out, "work login")
    assert work.split()[0] == "FAIL"
    assert "not logged in (claude auth status: loggedIn false)" in work
    assert "→ copilot-cli-proxy login gh, or COPILOT_GITHUB_TOKEN" in out
    assert "→ copilot-cli-proxy login work, or CLAUDE_CODE_OAUTH_TOKEN" in out
    assert line_of(out, "gh models").split()[0] == "ok"
    assert "default sonnet among them" in line_of(out, "work models")


@pytest.mark.real_cli
@pytest.mark.parametrize(
    ("backend_id", "usage"), [("gh", "Usage: copilot login"), ("work", "Usage: claude auth login")]
)
def test_login_of_a_backend_id_runs_that_backends_real_cli(
    real_home: Path, tmp_path: Path, backend_id: str, usage: str
) -> None:
    backends = write_backends(tmp_path, require("copilot"), require("claude"))
    env = real_env(real_home, tmp_path, BACKENDS_FILE=str(backends))
    result = run_command(["login", backend_id, "--", "--help"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert f"of backend '{backend_id}' in for copilot-cli-proxy" in result.stdout
    assert usage in result.stdout
