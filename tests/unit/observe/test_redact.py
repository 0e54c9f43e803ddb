"""Secrets never reach a log: what counts as one, and how it is replaced."""

from __future__ import annotations

import dataclasses

from copilot_cli_proxy.observe.redact import REDACTED, Redactor, collect_secrets
from copilot_cli_proxy.settings import Settings

GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def settings(**values: object) -> Settings:
    return dataclasses.replace(Settings(), **values)


def test_collects_api_keys_tokens_from_env_and_storage_password() -> None:
    found = collect_secrets(
        settings(
            api_key=("alpha-key-0001", "abc"),
            rate_limit_storage_uri="redis://:s3cret-pass@redis.internal:6379/0",
        ),
        {
            "GH_TOKEN": "token-value-123",
            "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-xyz",
            "MY_SERVICE_PASSWORD": "hunter2hunter2",
            "DISABLE_TOKEN_CACHE": "1",  # a flag, not a credential
            "HOME": "/root/very/long/path",
        },
    )
    assert set(found) == {
        "alpha-key-0001",
        "token-value-123",
        "sk-ant-oat01-xyz",
        "hunter2hunter2",
        "s3cret-pass",
    }


def test_replaces_every_occurrence_and_prefers_the_longest() -> None:
    redactor = Redactor(["alpha-key", "alpha-key-0001"])
    text = "k=alpha-key-0001 again alpha-key-0001 and alpha-key."
    assert redactor.text(text) == f"k={REDACTED} again {REDACTED} and {REDACTED}."


def test_known_token_shapes_are_caught_without_configuration() -> None:
    redactor = Redactor()
    for secret in (
        GH,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "sk-proj-abcdefghijklmnopqrstuv",
    ):
        assert secret not in redactor.text(f"token {secret} used")
    assert redactor.text("Authorization: Bearer abc.def-ghi") == f"Authorization: {REDACTED}"
    assert redactor.text("plain words, nothing secret") == "plain words, nothing secret"


def test_regex_characters_in_secrets_are_literal() -> None:
    redactor = Redactor(["a.b*c(d)"])
    assert redactor.text("x a.b*c(d) y aXbbc(d)") == f"x {REDACTED} y aXbbc(d)"


def test_walks_nested_values() -> None:
    redactor = Redactor(["alpha-key-0001"])
    record = {
        "argv": ["--x", "--key=alpha-key-0001"],
        "alpha-key-0001": {"deep": ("alpha-key-0001",)},
        "n": 3,
        "none": None,
    }
    assert redactor.value(record) == {
        "argv": ["--x", f"--key={REDACTED}"],
        REDACTED: {"deep": [REDACTED]},
        "n": 3,
        "none": None,
    }
    assert redactor.contains_secret("..alpha-key-0001..")
    assert not redactor.contains_secret("alpha-key")
