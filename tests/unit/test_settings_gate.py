"""The gatekeeping and observability settings, and the start-up refusal to expose a seat."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot_cli_proxy.cli import main
from copilot_cli_proxy.settings import Settings, SettingsError, is_loopback_host


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.api_key == ()
    assert settings.allow_unauthenticated is False
    assert settings.cors_origins == ()
    assert 1024 * 1024 <= settings.max_body_bytes <= 16 * 1024 * 1024
    assert settings.rate_limit_max == 60 and settings.rate_limit_window == 60_000
    assert settings.rate_limit_storage_uri == "memory://"
    assert settings.trust_proxy_headers is False
    assert settings.metrics_require_key is True
    assert settings.log_requests is True
    assert settings.log_request_body is False and settings.log_response_body is False


def test_reads_every_new_variable() -> None:
    settings = Settings.from_env(
        {
            "API_KEY": " alpha-key-0001 , beta-key-0002 ,",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "MAX_BODY_BYTES": "2048",
            "MAX_MESSAGES": "5",
            "MAX_PROMPT_BYTES": "100",
            "RATE_LIMIT_MAX": "0",
            "RATE_LIMIT_WINDOW": "1500",
            "RATE_LIMIT_STORAGE_URI": "redis://:pw@127.0.0.1:6379/2",
            "TRUST_PROXY_HEADERS": "yes",
            "METRICS_REQUIRE_KEY": "false",
            "LOG_REQUESTS": "off",
            "LOG_REQUEST_BODY": "1",
            "LOG_RESPONSE_BODY": "true",
            "LOG_RETENTION_DAYS": "3",
            "LOG_ROTATION_MB": "50",
        }
    )
    assert settings.api_key == ("alpha-key-0001", "beta-key-0002")
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert (settings.max_body_bytes, settings.max_messages, settings.max_prompt_bytes) == (
        2048,
        5,
        100,
    )
    assert (settings.rate_limit_max, settings.rate_limit_window) == (0, 1500)
    assert settings.rate_limit_storage_uri == "redis://:pw@127.0.0.1:6379/2"
    assert settings.trust_proxy_headers and not settings.metrics_require_key
    assert not settings.log_requests and settings.log_request_body and settings.log_response_body
    assert (settings.log_retention_days, settings.log_rotation_mb) == (3, 50)


def test_keys_and_storage_password_stay_out_of_repr() -> None:
    settings = Settings.from_env(
        {"API_KEY": "alpha-key-0001", "RATE_LIMIT_STORAGE_URI": "redis://:hunter2@h:1"}
    )
    assert "alpha-key-0001" not in repr(settings)
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("API_KEY", "good-key,bad key", "key #2"),
        ("API_KEY", "ключ", "printable ASCII"),
        ("MAX_BODY_BYTES", "10", ">= 1024"),
        ("MAX_MESSAGES", "0", ">= 1"),
        ("RATE_LIMIT_MAX", "-1", ">= 0"),
        ("RATE_LIMIT_WINDOW", "999", ">= 1000"),
        ("RATE_LIMIT_STORAGE_URI", "mongodb://u:secretpw@h", "memory://"),
        ("RATE_LIMIT_STORAGE_URI", "localhost:6379", "memory://"),
        ("TRUST_PROXY_HEADERS", "maybe", "true or false"),
        ("LOG_RETENTION_DAYS", "0", ">= 1"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert fragment in message
    assert "secretpw" not in message and "ключ" not in message


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.10.0.1", "::1", "[::1]", "localhost", "LOCALHOST"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)
    assert Settings.from_env({"HOST": host}).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com", ""])
def test_exposed_host_without_key_is_refused(host: str) -> None:
    assert not is_loopback_host(host)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"HOST": host})
    message = str(caught.value)
    assert "HOST=" in message and "API_KEY" in message
    assert "anyone on the network could use your Copilot seat" in message
    assert "ALLOW_UNAUTHENTICATED=true" in message


def test_claude_seat_is_named_for_claude() -> None:
    with pytest.raises(SettingsError, match="could use your Claude seat"):
        Settings.from_env({"HOST": "0.0.0.0", "SERVICE": "claude"})


def test_exposed_host_with_a_key_or_explicit_consent_starts() -> None:
    assert Settings.from_env({"HOST": "0.0.0.0", "API_KEY": "alpha-key-0001"}).api_key
    assert Settings.from_env({"HOST": "0.0.0.0", "ALLOW_UNAUTHENTICATED": "true"}).host
    with pytest.raises(SettingsError):
        Settings.from_env({"HOST": "0.0.0.0", "ALLOW_UNAUTHENTICATED": "false"})


def test_the_console_command_reports_the_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from elsewhere
    for name in ("API_KEY", "ALLOW_UNAUTHENTICATED", "HOST"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "HOST=0.0.0.0" in err and "API_KEY" in err
