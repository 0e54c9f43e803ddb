"""Each copilot run's private home and git root (what the real CLI showed it needs)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from copilot_cli_proxy.backends.copilot_isolation import (
    STORE_NAME,
    isolated_env,
    make_private_home,
    mark_git_root,
    operator_copilot_home,
)


def operator_home(tmp_path: Path) -> Path:
    home = tmp_path / "operator" / ".copilot"
    (home / "session-state" / "old-session").mkdir(parents=True)
    (home / "config.json").write_text('// managed\n{"loggedInUsers": []}\n')
    (home / "copilot-instructions.md").write_text("PLANTED")
    (home / "settings.json").write_text('{"hooks": {}}')
    (home / "mcp-config.json").write_text("{}")
    (home / "session-store.db").write_text("every earlier conversation")
    return home


def test_private_home_has_the_login_and_nothing_else(tmp_path: Path) -> None:
    home = make_private_home(tmp_path / "private", operator_home(tmp_path))
    assert sorted(p.name for p in home.iterdir()) == ["config.json", STORE_NAME]
    assert (home / "config.json").read_text() == '// managed\n{"loggedInUsers": []}\n'
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "config.json").stat().st_mode) == 0o600
    # a directory where the store would be: the CLI cannot create its database there
    assert (home / STORE_NAME).is_dir()


def test_private_home_without_an_operator_login(tmp_path: Path) -> None:
    home = make_private_home(tmp_path / "private", tmp_path / "no-such-home")
    assert sorted(p.name for p in home.iterdir()) == [STORE_NAME]


def test_operator_copilot_home_follows_copilot_home_then_home() -> None:
    assert operator_copilot_home({"COPILOT_HOME": "/a", "HOME": "/h"}) == Path("/a")
    assert operator_copilot_home({"HOME": "/h"}) == Path("/h/.copilot")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_marked_dir_is_its_own_git_root_inside_another_repository(tmp_path: Path) -> None:
    """Regression: copilot read AGENTS.md, CLAUDE.md, .github/… from every directory up
    to the git root above the request dir; git must see the request dir as the root."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    workdir = tmp_path / "requests" / "req-1"
    workdir.mkdir(parents=True)
    mark_git_root(workdir)
    top = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(top) == workdir


def test_isolated_env_strips_what_widens_the_run_and_sets_the_home(tmp_path: Path) -> None:
    base = {
        "PATH": "/bin",
        "HOME": "/h",
        "COPILOT_HOME": "/operator",
        "COPILOT_CUSTOM_INSTRUCTIONS_DIRS": "/planted",
        "COPILOT_ALLOW_ALL": "true",
        "COPILOT_GITHUB_TOKEN": "github_pat_x",
        "COPILOT_PROVIDER_BASE_URL": "http://x",
        "API_KEY": "server-secret",
    }
    env = isolated_env(tmp_path, base)
    assert env["COPILOT_HOME"] == str(tmp_path)
    for gone in ("COPILOT_CUSTOM_INSTRUCTIONS_DIRS", "COPILOT_ALLOW_ALL", "API_KEY"):
        assert gone not in env
    # the login and BYOK still reach the CLI
    assert env["COPILOT_GITHUB_TOKEN"] == "github_pat_x"
    assert env["COPILOT_PROVIDER_BASE_URL"] == "http://x"
    assert env["HOME"] == "/h"
