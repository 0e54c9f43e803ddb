"""The doctor and login hooks every CLI backend has through ``CliBackend``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from copilot_cli_proxy.backends.claude_cli import ClaudeCliBackend
from copilot_cli_proxy.backends.copilot_cli import CopilotCliBackend
from copilot_cli_proxy.settings import Settings
from tests.fakes_env import FAKE_CLI_ENV

FAKE_CLAUDE = str(Path(__file__).resolve().parents[2] / "fakes" / "claude")


def claude(tmp_path: Path, cli: str = FAKE_CLAUDE) -> ClaudeCliBackend:
    settings = Settings(
        service="claude",
        claude_cli_path=cli,
        temp_dir_base=str(tmp_path / "t"),
        cli_env=FAKE_CLI_ENV,
    )
    return ClaudeCliBackend(settings)


async def test_a_working_cli_is_diagnosed_with_its_version_and_models(tmp_path: Path) -> None:
    found = await claude(tmp_path).diagnose()
    assert [(d.name, d.ok) for d in found[:2]] == [("claude CLI", True), ("claude models", True)]
    assert FAKE_CLAUDE in found[0].detail and "no version" not in found[0].detail
    assert found[1].detail  # the model ids


async def test_a_missing_cli_is_one_failed_line_saying_how_to_install_it(tmp_path: Path) -> None:
    backend = CopilotCliBackend(Settings(copilot_cli_path=str(tmp_path / "none")))
    (only,) = await backend.diagnose()
    assert (only.name, only.ok) == ("copilot CLI", False)
    assert "npm install @github/copilot" in only.detail


async def test_a_not_logged_in_cli_says_the_login_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_LOGGED_OUT", "1")
    backend = claude(tmp_path)
    assert await backend.check_login() is False
    login = next(d for d in await backend.diagnose() if d.name == "claude login")
    assert not login.ok and "copilot-cli-proxy login claude" in login.detail
    out = io.StringIO()
    assert await backend.login(out) == 2
    assert "copilot-cli-proxy login claude" in out.getvalue()
