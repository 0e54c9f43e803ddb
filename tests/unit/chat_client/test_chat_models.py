from __future__ import annotations

import pytest

from chat_client.models import close_matches, server_default, unknown_model_message

COPILOT = ["gpt-5-mini", "gpt-5", "claude-sonnet-4.5", "claude-haiku-4.5", "gpt-4.1"]
CLAUDE = ["sonnet", "default", "opus[1m]", "haiku"]


@pytest.mark.parametrize(
    ("name", "ids", "expected"),
    [
        ("gpt5-mini", COPILOT, ["gpt-5-mini"]),
        ("GPT-5-MINI", COPILOT, ["gpt-5-mini", "gpt-5"]),  # any case
        ("sonnet", COPILOT, ["claude-sonnet-4.5"]),  # a part of an id
        ("claude", COPILOT, ["claude-sonnet-4.5", "claude-haiku-4.5"]),
        ("opus", CLAUDE, ["opus[1m]"]),
        ("sonet", CLAUDE, ["sonnet"]),  # a typo
        ("zzz", COPILOT, []),
        ("gpt-5", [], []),
    ],
)
def test_close_matches(name: str, ids: list[str], expected: list[str]) -> None:
    assert close_matches(name, ids) == expected


def test_close_matches_offers_at_most_four() -> None:
    ids = [f"gpt-{n}" for n in range(10)]
    assert len(close_matches("gpt", ids)) == 4


def test_server_default_is_the_first_listed() -> None:
    assert server_default(CLAUDE) == "sonnet"
    assert server_default([]) is None


def test_unknown_model_message() -> None:
    assert unknown_model_message("sonet", CLAUDE) == (
        "The server has no model sonet. Did you mean: sonnet?"
    )
    assert unknown_model_message("x", CLAUDE) == "The server has no model x; /models lists its 4."
