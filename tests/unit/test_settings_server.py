"""The settings for slow clients, the failed-key throttle, proxy trust and probe logs,
and the rule that every setting is documented in .env.example and the README."""

from __future__ import annotations

import re

import pytest

from copilot_cli_proxy.settings import FIELDS, PROJECT_ROOT, Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.header_timeout, settings.body_timeout) == (10_000, 60_000)
    assert settings.keep_alive_timeout == 5_000
    assert (settings.auth_failure_max, settings.auth_failure_window) == (10, 60_000)
    assert settings.forwarded_allow_ips == ("127.0.0.1", "::1")
    assert settings.log_probes is False


def test_reads_every_new_variable() -> None:
    settings = Settings.from_env(
        {
            "HEADER_TIMEOUT": "1500",
            "BODY_TIMEOUT": "2500",
            "KEEP_ALIVE_TIMEOUT": "3000",
            "AUTH_FAILURE_MAX": "0",
            "AUTH_FAILURE_WINDOW": "9000",
            "FORWARDED_ALLOW_IPS": " 10.0.0.0/8 , 2001:db8::1 ,",
            "LOG_PROBES": "yes",
        }
    )
    assert (settings.header_timeout_s, settings.body_timeout_s) == (1.5, 2.5)
    assert settings.keep_alive_timeout == 3000
    assert (settings.auth_failure_max, settings.auth_failure_window) == (0, 9000)
    assert settings.forwarded_allow_ips == ("10.0.0.0/8", "2001:db8::1")
    assert settings.log_probes is True
    assert Settings.from_env({"FORWARDED_ALLOW_IPS": "*"}).forwarded_allow_ips == ("*",)


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("HEADER_TIMEOUT", "0", ">= 100"),
        ("BODY_TIMEOUT", "fast", "whole number"),
        ("KEEP_ALIVE_TIMEOUT", "10", ">= 1000"),
        ("AUTH_FAILURE_MAX", "-1", ">= 0"),
        ("AUTH_FAILURE_WINDOW", "5", ">= 1000"),
        ("FORWARDED_ALLOW_IPS", "proxy.example", "IP addresses or networks"),
        ("LOG_PROBES", "sometimes", "true or false"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert str(caught.value).startswith(f"{variable}: ") and fragment in str(caught.value)


def test_every_setting_is_documented() -> None:
    example = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    in_example = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    missing = [spec.env for spec in FIELDS if spec.env not in in_example]
    undocumented = [spec.env for spec in FIELDS if f"`{spec.env}`" not in readme]
    assert (missing, undocumented) == ([], [])
