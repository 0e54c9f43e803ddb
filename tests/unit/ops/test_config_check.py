from __future__ import annotations

from collections.abc import Mapping

import pytest

from copilot_cli_proxy.ops import config_check
from copilot_cli_proxy.ops.config_check import read_settings
from copilot_cli_proxy.settings import Settings, SettingsError


def test_valid_environment_has_no_problems() -> None:
    report = read_settings({"PORT": "8080", "SERVICE": "claude"})
    assert report.problems == ()
    assert report.dropped == frozenset()
    assert report.settings.port == 8080
    assert report.settings.service == "claude"


def test_every_bad_variable_is_reported_and_the_rest_still_applies() -> None:
    report = read_settings({"PORT": "abc", "MAX_QUEUE": "-1", "SERVICE": "claude"})
    assert len(report.problems) == 2
    assert report.problems[0].startswith("PORT:")
    assert report.problems[1].startswith("MAX_QUEUE:")
    assert report.dropped == {"PORT", "MAX_QUEUE"}
    assert report.settings.port == Settings().port
    assert report.settings.service == "claude"


def test_a_problem_spanning_variables_drops_the_one_it_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """E.g. a non-loopback HOST without an API key: the message starts with ``HOST=``."""
    real = Settings.from_env

    def from_env(env: Mapping[str, str] | None = None) -> Settings:
        assert env is not None
        if env.get("HOST") == "0.0.0.0":
            raise SettingsError("HOST=0.0.0.0 is not a loopback address and API_KEY is empty")
        return real(env)

    monkeypatch.setattr(config_check.Settings, "from_env", staticmethod(from_env))
    report = read_settings({"HOST": "0.0.0.0", "PORT": "9000"})
    assert report.problems == ("HOST=0.0.0.0 is not a loopback address and API_KEY is empty",)
    assert report.dropped == {"HOST"}
    assert report.settings.port == 9000


def test_a_problem_naming_no_variable_falls_back_to_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def from_env(env: Mapping[str, str] | None = None) -> Settings:
        raise SettingsError("something is off")

    monkeypatch.setattr(config_check.Settings, "from_env", staticmethod(from_env))
    report = read_settings({"PORT": "9000"})
    assert report.problems == ("something is off",)
    assert report.settings == Settings()
