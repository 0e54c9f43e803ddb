from __future__ import annotations

import pytest

from chat_client.config import DEFAULT_SERVER_URL, PLACEHOLDER_API_KEY, ChatConfig, resolve_config

ENV = {
    "COPILOT_SERVER_URL": "http://env-host:1111",
    "COPILOT_MODEL": "env-model",
    "COPILOT_API_KEY": "env-key",
}


def test_defaults_without_flags_or_env() -> None:
    config = resolve_config([], {})
    assert config == ChatConfig()
    assert config.server_url == DEFAULT_SERVER_URL == "http://127.0.0.1:3456"
    assert config.api_base == "http://127.0.0.1:3456/v1"
    assert config.model is None
    assert config.system is None
    assert config.stream is True


def test_environment_is_used_when_no_flag_is_given() -> None:
    config = resolve_config([], ENV)
    assert config.server_url == "http://env-host:1111"
    assert config.model == "env-model"
    assert config.api_key == "env-key"


def test_flags_beat_the_environment() -> None:
    argv = ["--server", "http://flag-host:2222", "--model", "flag-model", "--api-key", "flag-key"]
    config = resolve_config(argv, ENV)
    assert config.server_url == "http://flag-host:2222"
    assert config.model == "flag-model"
    assert config.api_key == "flag-key"


def test_each_flag_wins_on_its_own() -> None:
    config = resolve_config(["--model", "flag-model"], ENV)
    assert config.model == "flag-model"
    assert config.server_url == "http://env-host:1111"
    assert config.api_key == "env-key"


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_environment_values_count_as_unset(blank: str) -> None:
    env = {"COPILOT_SERVER_URL": blank, "COPILOT_MODEL": blank, "COPILOT_API_KEY": blank}
    assert resolve_config([], env) == ChatConfig()


def test_blank_flag_falls_back_to_the_environment() -> None:
    assert resolve_config(["--model", ""], ENV).model == "env-model"


def test_system_and_no_stream_flags() -> None:
    config = resolve_config(["--system", "  Be terse.\n", "--no-stream"], {})
    assert config.system == "  Be terse.\n"  # a prompt keeps its whitespace
    assert config.stream is False


def test_blank_system_prompt_is_none() -> None:
    assert resolve_config(["--system", "  "], {}).system is None


@pytest.mark.parametrize(
    ("server", "base"),
    [
        ("http://h:1", "http://h:1/v1"),
        ("http://h:1/", "http://h:1/v1"),
        ("http://h:1/v1", "http://h:1/v1"),
        ("http://h:1/v1/", "http://h:1/v1"),
        ("https://h/proxy", "https://h/proxy/v1"),
    ],
)
def test_api_base_appends_v1_once(server: str, base: str) -> None:
    assert ChatConfig(server_url=server).api_base == base


def test_placeholder_key_when_none_is_given() -> None:
    assert ChatConfig().effective_api_key == PLACEHOLDER_API_KEY
    assert ChatConfig(api_key="k").effective_api_key == "k"


def test_unknown_flag_exits_with_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        resolve_config(["--modle", "x"], {})
    assert exc.value.code == 2
    assert "--modle" in capsys.readouterr().err
