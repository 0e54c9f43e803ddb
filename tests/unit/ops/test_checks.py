from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from copilot_cli_proxy.backends.base import ModelInfo
from copilot_cli_proxy.ops.checks import (
    Check,
    Status,
    claude_login_check,
    config_checks,
    copilot_login_check,
    demoted,
    models_check,
    network_check,
    not_found_check,
    port_check,
    version_check,
    writable_dir_check,
)
from copilot_cli_proxy.settings import Settings, is_loopback_host

# -- the CLIs' answers, as the real binaries give them (cli-contract §1, §2.4) ---------------


def test_copilot_not_logged_in_is_a_failure_with_the_login_command() -> None:
    check = copilot_login_check(
        {"isAuthenticated": False, "statusMessage": "Not authenticated"}, []
    )
    assert check.status is Status.FAIL
    assert check.detail == "not logged in (auth.getStatus: Not authenticated)"
    assert "copilot-cli-proxy login copilot" in check.hint
    assert "COPILOT_GITHUB_TOKEN" in check.hint


def test_copilot_token_that_does_not_work_is_named() -> None:
    check = copilot_login_check(
        {"isAuthenticated": False, "statusMessage": "Not authenticated"}, ["GH_TOKEN"]
    )
    assert "GH_TOKEN is set but the CLI does not accept it" in check.detail


def test_copilot_logged_in_shows_who_once() -> None:
    status = {
        "isAuthenticated": True,
        "login": "octo",
        "host": "https://github.com",
        "statusMessage": "Logged in as octo",
    }
    check = copilot_login_check(status, [])
    assert check.status is Status.OK
    assert check.detail == "Logged in as octo (https://github.com)"


@pytest.mark.parametrize("status", [None, [], {}, {"isAuthenticated": "yes"}])
def test_copilot_status_without_an_answer_fails(status: object) -> None:
    assert copilot_login_check(status, []).status is Status.FAIL


def test_claude_not_logged_in_real_output() -> None:
    stdout = json.dumps({"loggedIn": False, "authMethod": "none", "apiProvider": "firstParty"})
    check = claude_login_check(1, stdout, "")
    assert check.status is Status.FAIL
    assert "not logged in" in check.detail
    assert "claude setup-token" in check.hint


def test_claude_token_login_real_output() -> None:
    stdout = json.dumps(
        {
            "loggedIn": True,
            "authMethod": "api_key",
            "apiProvider": "firstParty",
            "apiKeySource": "ANTHROPIC_API_KEY",
        },
        indent=2,
    )
    check = claude_login_check(0, stdout, "")
    assert check.status is Status.OK
    assert check.detail == "logged in (authMethod: api_key, apiKeySource: ANTHROPIC_API_KEY)"


def test_claude_status_that_is_not_json_fails_with_the_reason() -> None:
    check = claude_login_check(1, "", "error: unknown command 'auth'\n")
    assert check.status is Status.FAIL
    assert "error: unknown command 'auth'" in check.detail


def test_version_first_line_without_the_trailing_dot() -> None:
    stdout = "GitHub Copilot CLI 1.0.102.\nRun 'copilot update' to check for updates.\n"
    check = version_check("copilot", "/x/copilot", 0, stdout, "")
    assert check == Check("copilot CLI", Status.OK, "GitHub Copilot CLI 1.0.102 at /x/copilot")


def test_version_failure_shows_stderr_and_what_copilot_needs() -> None:
    check = version_check("copilot", "/x/copilot", 127, "", "/usr/bin/env: 'node': No such file\n")
    assert check.status is Status.FAIL
    assert "'node': No such file" in check.detail
    assert "Node.js" in check.hint


def test_not_found_names_the_variable_or_the_search() -> None:
    assert "CLAUDE_CLI_PATH=/opt/claude" in not_found_check("claude", "/opt/claude").detail
    assert "not on PATH" in not_found_check("copilot", "").detail


def models(*ids: str, aliases: tuple[str, ...] = ()) -> list[ModelInfo]:
    return [ModelInfo(id=i, owned_by="x", aliases=aliases if i == ids[0] else ()) for i in ids]


def test_models_ok_when_the_default_is_listed() -> None:
    check = models_check("claude", models("default", "sonnet", "haiku", "opus"), None, "sonnet")
    assert check.status is Status.OK
    assert check.detail == "4 models, default sonnet among them: default, sonnet, haiku, …"


def test_models_default_may_be_an_alias() -> None:
    found = models("haiku", aliases=("claude-haiku-4-5",))
    assert models_check("claude", found, None, "claude-haiku-4-5").status is Status.OK


def test_models_warns_about_a_default_the_cli_does_not_list() -> None:
    check = models_check("copilot", models("gpt-5-mini"), None, "gpt-4-typo")
    assert check.status is Status.WARN
    assert "'gpt-4-typo'" in check.detail
    assert "DEFAULT_MODEL" in check.hint


def test_failed_discovery_is_a_warning_the_server_still_serves_the_default() -> None:
    check = models_check("copilot", None, "no model list", "gpt-5-mini")
    assert check.status is Status.WARN
    assert "no model list" in check.detail and "'gpt-5-mini'" in check.detail


def test_an_unused_cli_only_warns() -> None:
    check = demoted(Check("claude login", Status.FAIL, "not logged in", "log in"), "copilot")
    assert check.status is Status.WARN
    assert check.detail == "not logged in (not used: SERVICE=copilot)"
    assert demoted(Check("x", Status.OK, "fine"), "copilot").status is Status.OK


# -- configuration and this machine -------------------------------------------------------


def test_config_ok_names_the_env_file() -> None:
    [check] = config_checks(Settings(), [], "/srv/proxy/.env")
    assert check.status is Status.OK
    assert "SERVICE=copilot" in check.detail and ".env: /srv/proxy/.env" in check.detail


def test_every_config_problem_is_its_own_failure() -> None:
    found = config_checks(Settings(), ["PORT: bad", "MAX_QUEUE: bad"], "")
    assert [(c.status, c.detail) for c in found] == [
        (Status.FAIL, "PORT: bad"),
        (Status.FAIL, "MAX_QUEUE: bad"),
    ]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_network_open_without_a_key_is_a_warning() -> None:
    settings = Settings(host="0.0.0.0")
    check = network_check(settings)
    assert check.status is Status.WARN
    assert "API_KEY" in check.hint
    assert network_check(Settings()).status is Status.OK


def test_writable_dir_existing_and_to_be_created(tmp_path: Path) -> None:
    assert writable_dir_check("t", tmp_path, "X", needed=True).status is Status.OK
    check = writable_dir_check("t", tmp_path / "a" / "b", "X", needed=True)
    assert check.status is Status.OK
    assert "will be created" in check.detail
    assert not (tmp_path / "a").exists(), "the doctor creates nothing"
    assert not list(tmp_path.iterdir()), "its probe file is gone"


def test_a_dir_under_a_file_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    check = writable_dir_check("temp dir", blocker / "sub", "TEMP_DIR_BASE", needed=True)
    assert check.status is Status.FAIL
    assert "TEMP_DIR_BASE" in check.hint
    assert writable_dir_check("log dir", blocker / "sub", "LOG_DIR", needed=False).status is (
        Status.WARN
    )


def test_port_free_and_taken() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.listen()
        check = port_check("127.0.0.1", port)
        assert check.status is Status.FAIL
        assert "taken by another program" in check.detail
    assert port_check("127.0.0.1", port).status is Status.OK
    assert port_check("127.0.0.1", 0).status is Status.OK


def test_port_on_an_address_this_machine_does_not_have() -> None:
    check = port_check("192.0.2.1", 3456)  # TEST-NET-1: never local
    assert check.status is Status.FAIL
    assert "not an address of this machine" in check.detail
