from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest

from copilot_cli_proxy.runtime.workdir import default_temp_base
from copilot_cli_proxy.settings import FIELDS, Settings, SettingsError


def test_defaults_from_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 3456
    assert settings.service == "copilot"
    assert settings.max_concurrent == 4
    assert settings.allowed_tools == ()
    assert settings.log_level == "INFO"
    assert settings.request_timeout == 300_000


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "HOME": "/root", "port": "1"}) == Settings()


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().port = 1  # type: ignore[misc]


def test_reads_every_kind_of_value() -> None:
    settings = Settings.from_env(
        {
            "HOST": " 0.0.0.0 ",
            "API_KEY": "test-key-1",  # a non-loopback HOST needs one
            "PORT": " 8080 ",
            "SERVICE": "Claude",
            "DEFAULT_MODEL": "opus",
            "REQUEST_TIMEOUT": "5000",
            "MAX_CONCURRENT": "2",
            "MAX_QUEUE": "0",
            "QUEUE_TIMEOUT": "0",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.host == "0.0.0.0"
    assert settings.port == 8080
    assert settings.service == "claude"
    assert settings.model == "opus"
    assert settings.request_timeout_s == 5.0
    assert settings.max_concurrent == 2
    assert settings.max_queue == 0
    assert settings.queue_timeout_s == 0.0
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(("service", "model"), [("copilot", "gpt-5-mini"), ("claude", "sonnet")])
def test_model_falls_back_to_the_services_default(service: str, model: str) -> None:
    assert Settings.from_env({"SERVICE": service}).model == model


def test_empty_default_model_means_the_services_default() -> None:
    assert Settings.from_env({"DEFAULT_MODEL": "  "}).model == "gpt-5-mini"


def test_temp_base_default_is_the_users_own_not_tmp(tmp_path: Path) -> None:
    default = Settings().temp_base
    assert default == default_temp_base()
    assert not default.is_relative_to(tempfile.gettempdir()), "world-writable /tmp"
    assert Settings.from_env({"TEMP_DIR_BASE": str(tmp_path)}).temp_base == tmp_path
    assert Settings.from_env({"TEMP_DIR_BASE": str(tmp_path)}).temp_base == tmp_path


def test_state_dir_default_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings().state_path == tmp_path / ".local" / "state" / "copilot-cli-proxy"
    assert Settings.from_env({"STATE_DIR": "~/elsewhere"}).state_path == tmp_path / "elsewhere"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "-1"),
        ("PORT", "65536"),
        ("PORT", "80.5"),
        ("PORT", ""),
        ("MAX_CONCURRENT", "0"),
        ("MAX_CONCURRENT", "257"),
        ("MAX_QUEUE", "-1"),
        ("SERVICE", "gpt"),
        ("SERVICE", ""),
        ("REQUEST_TIMEOUT", "-1"),
        ("REQUEST_TIMEOUT", "999"),
        ("REQUEST_TIMEOUT", "1e6"),
        ("QUEUE_TIMEOUT", "soon"),
        ("MODELS_CACHE_TTL", "-5"),
        ("LOG_LEVEL", "loud"),
        ("LOG_LEVEL", ""),
    ],
)
def test_every_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert repr(value) in message or value.strip() in message


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_first_bad_variable_is_reported_even_with_good_ones_around() -> None:
    with pytest.raises(SettingsError, match=r"^MAX_CONCURRENT: "):
        Settings.from_env({"PORT": "1234", "MAX_CONCURRENT": "0", "SERVICE": "claude"})


@pytest.mark.parametrize(
    ("raw", "tools"),
    [
        ("", ()),
        (" ", ()),
        (",,,", ()),
        ("shell", ("shell",)),
        ("shell,write", ("shell", "write")),
        (" shell , write ,, url ", ("shell", "write", "url")),
        ("shell(git:*),Read", ("shell(git:*)", "Read")),
    ],
)
def test_allowed_tools_list_parsing(raw: str, tools: tuple[str, ...]) -> None:
    assert Settings.from_env({"ALLOWED_TOOLS": raw}).allowed_tools == tools


def test_every_field_has_one_distinct_upper_case_variable() -> None:
    names = [spec.env for spec in FIELDS]
    assert len(names) == len(set(names))
    assert all(name == name.upper() for name in names)
    assert {spec.name for spec in FIELDS} == {f.name for f in dataclasses.fields(Settings)}
    assert all(spec.help for spec in FIELDS)
