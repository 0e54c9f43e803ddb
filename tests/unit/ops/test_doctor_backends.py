"""``doctor`` with a backends file: every backend of the file, each through its own CLI
path and environment allowlist, with the exact command that logs it in. Over the fake
CLIs (tests/fakes), which answer --version, the login state and model discovery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from copilot_cli_proxy.ops.checks import Check, Status
from copilot_cli_proxy.ops.doctor import failed, render_json, run_doctor

FAKES = Path(__file__).resolve().parents[2] / "fakes"


def by_name(found: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in found}


def doctor_env(tmp_path: Path, backends: Path) -> dict[str, str]:
    return {
        "BACKENDS_FILE": str(backends),
        "PORT": "0",
        "TEMP_DIR_BASE": str(tmp_path / "requests"),
        "LOG_DIR": str(tmp_path / "logs"),
    }


@pytest.fixture
def logged_out_everywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The server's environment says "logged out" to any fake CLI that may see it: only a
    backend whose entry names it in ``env`` does."""
    monkeypatch.setenv("FAKE_CLI_LOGGED_OUT", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()


def two_backends(tmp_path: Path) -> Path:
    path = tmp_path / "backends.toml"
    path.write_text(
        f"""
[[backend]]
id = "gh"
kind = "copilot-cli"
cli_path = "{FAKES / "copilot"}"

[[backend]]
id = "work"
kind = "claude-cli"
runner = "oneshot"
cli_path = "{FAKES / "claude"}"
env = ["FAKE_CLI_LOGGED_OUT"]

[[backend]]
id = "home"
kind = "claude-cli"
cli_path = "{FAKES / "claude"}"
"""
    )
    return path


async def test_every_backend_of_the_file_is_checked_with_its_own_environment(
    tmp_path: Path, logged_out_everywhere: None
) -> None:
    backends = two_backends(tmp_path)
    found, summaries = await run_doctor(doctor_env(tmp_path, backends))
    checks = by_name(found)
    assert checks["backends"].detail == f"{backends}: 3 backends (gh, work, home)"
    assert checks["gh backend"].detail == "kind copilot-cli, runner persistent"
    assert checks["work backend"].detail == "kind claude-cli, runner oneshot"
    assert checks["home backend"].detail == "kind claude-cli, runner persistent"
    assert checks["gh CLI"].detail == f"GitHub Copilot CLI 1.0.102 at {FAKES / 'copilot'}"
    assert checks["work CLI"].status is Status.OK
    # Only "work" names FAKE_CLI_LOGGED_OUT in its env: only its CLI sees it.
    assert checks["gh login"].status is Status.OK
    assert "Logged in as fake-user" in checks["gh login"].detail
    assert checks["home login"].status is Status.OK
    work = checks["work login"]
    assert work.status is Status.FAIL
    assert work.detail == "not logged in (claude auth status: loggedIn false)"
    assert work.hint.startswith("copilot-cli-proxy login work, or CLAUDE_CODE_OAUTH_TOKEN")
    assert "31 models, default gpt-5-mini among them" in checks["gh models"].detail
    assert "default sonnet among them" in checks["home models"].detail
    assert failed(found)
    # The screen order: each backend's lines together, in the file's order.
    names = [c.name for c in found]
    assert names.index("gh models") < names.index("work backend") < names.index("home backend")
    assert [s["id"] for s in summaries] == ["gh", "work", "home"]


async def test_json_has_one_object_per_backend(tmp_path: Path, logged_out_everywhere: None) -> None:
    found, summaries = await run_doctor(doctor_env(tmp_path, two_backends(tmp_path)))
    data = json.loads(render_json(found, summaries))
    work: dict[str, Any] = data["backends"][1]
    assert work["kind"] == "claude-cli" and work["runner"] == "oneshot"
    assert work["cli_path"] == str(FAKES / "claude")
    assert work["version"] == "2.1.197 (Claude Code)"
    assert work["logged_in"] is False
    assert work["login_command"] == "copilot-cli-proxy login work"
    assert "sonnet" in work["models"] and work["models_error"] is None
    assert data["backends"][0]["logged_in"] is True
    assert data["ok"] is False


async def test_a_missing_cli_names_the_entry_that_sets_its_path(tmp_path: Path) -> None:
    backends = tmp_path / "backends.toml"
    backends.write_text(
        f'[[backend]]\nid = "gh"\nkind = "copilot-cli"\ncli_path = "{tmp_path}/no/copilot"\n'
    )
    found, summaries = await run_doctor(doctor_env(tmp_path, backends))
    check = by_name(found)["gh CLI"]
    assert check.status is Status.FAIL
    assert check.detail == (
        f"{tmp_path}/no/copilot: no such executable (cli_path of backend 'gh' in {backends})"
    )
    assert "gh login" not in by_name(found), "nothing to ask without the CLI"
    assert summaries[0]["cli_path"] is None


async def test_a_broken_file_is_the_one_failure_shown(tmp_path: Path) -> None:
    backends = tmp_path / "backends.toml"
    backends.write_text('[[backend]]\nid = "gh"\nkind = "copilot-cli"\nrunner = "warm"\n')
    found, summaries = await run_doctor(doctor_env(tmp_path, backends))
    check = by_name(found)["backends"]
    assert check.status is Status.FAIL
    assert str(backends) in check.detail and "'runner'" in check.detail
    assert summaries == []
    assert not [c for c in found if c.name.endswith((" CLI", " login", " models"))]


async def test_an_http_backend_shows_its_login_and_configured_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UPSTREAM_TOKEN", raising=False)
    backends = tmp_path / "backends.toml"
    backends.write_text(
        '[[backend]]\nid = "up"\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'models = ["m-1", "m-2"]\nauth = { type = "bearer", token_env = "UPSTREAM_TOKEN" }\n'
    )
    found, summaries = await run_doctor(
        {**doctor_env(tmp_path, backends), "STATE_DIR": str(tmp_path / "state")}
    )
    checks = by_name(found)
    assert checks["up backend"].detail == "kind openai, base_url http://127.0.0.1:9/v1"
    login = checks["up login"]
    assert login.status is Status.FAIL
    assert "UPSTREAM_TOKEN" in login.detail
    assert login.hint == "copilot-cli-proxy login up"
    assert checks["up models"].status is Status.OK
    assert checks["up models"].detail.startswith("2 models, default m-1 among them")
    assert summaries[0]["models"] == ["m-1", "m-2"]


async def test_the_config_line_names_the_file_not_service_and_runner(tmp_path: Path) -> None:
    backends = tmp_path / "backends.toml"
    backends.write_text('[[backend]]\nid = "gh"\nkind = "copilot-cli"\ncli_path = "/no/x"\n')
    found, _ = await run_doctor({**doctor_env(tmp_path, backends), "SERVICE": "claude"})
    config = by_name(found)["config"].detail
    assert config.startswith(f"BACKENDS_FILE={backends} HOST=127.0.0.1 PORT=0")
    assert "SERVICE" not in config and "RUNNER" not in config
