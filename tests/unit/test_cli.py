from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from copilot_cli_proxy import __version__
from copilot_cli_proxy.cli import build_parser, env_file_of, load_environment, main


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_no_command_serves_and_the_old_flags_still_work() -> None:
    args = parse("--port", "8080", "--service", "claude")
    assert args.command is None
    assert (args.port, args.service) == ("8080", "claude")


def test_serve_with_flags_after_the_command() -> None:
    args = parse("serve", "--port", "8080")
    assert (args.command, args.port) == ("serve", "8080")


def test_flags_before_the_command_are_kept() -> None:
    args = parse("--port", "8080", "doctor", "--service", "claude")
    assert (args.command, args.port, args.service) == ("doctor", "8080", "claude")


def test_unset_flags_are_absent_not_none() -> None:
    args = parse("doctor")
    assert not hasattr(args, "port")
    assert args.json is False


def test_login_takes_a_service_and_passes_cli_arguments_after_double_dash() -> None:
    args = parse("login", "copilot", "--", "--device-code", "--host", "https://x.ghe.com")
    assert args.target == "copilot"
    assert args.cli_args == ["--device-code", "--host", "https://x.ghe.com"]
    assert parse("login", "claude").cli_args == []


def test_login_refuses_an_unknown_service(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.delenv("BACKENDS_FILE", raising=False)
    assert main(["login", "gemini"]) == 2
    assert "expected copilot, claude or a backend id of BACKENDS_FILE" in capsys.readouterr().err


def test_login_names_the_backends_of_the_file_when_the_id_is_unknown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    backends = tmp_path / "backends.toml"
    backends.write_text(
        '[[backend]]\nid = "up"\nkind = "openai"\nbase_url = "http://127.0.0.1:9"\n'
    )
    assert main(["login", "--backends-file", str(backends), "gemini"]) == 2
    err = capsys.readouterr().err
    assert f"login 'gemini': {backends} has no backend with that id; its backends: up" in err


def test_login_of_an_openai_backend_without_auth_needs_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    backends = tmp_path / "backends.toml"
    backends.write_text(
        '[[backend]]\nid = "up"\nkind = "openai"\nbase_url = "http://127.0.0.1:9"\n'
    )
    assert main(["login", "--backends-file", str(backends), "up"]) == 0
    assert "needs no login" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse("--version")
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"copilot-cli-proxy {__version__}"


def test_precedence_flags_over_environment_over_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=1111\nSERVICE=claude\nMAX_QUEUE=7\n")
    monkeypatch.setenv("PORT", "2222")
    monkeypatch.setenv("SERVICE", "copilot")
    args = parse("--env-file", str(env_file), "doctor", "--port", "3333")
    env = load_environment(args, env_file_of(args))
    assert (env["PORT"], env["SERVICE"], env["MAX_QUEUE"]) == ("3333", "copilot", "7")


def test_a_missing_env_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--env-file", str(tmp_path / "nope.env")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_serve_stops_on_a_bad_setting_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout may leak into this process
    monkeypatch.setenv("PORT", "not-a-port")
    assert main([]) == 2
    assert "PORT" in capsys.readouterr().err
