"""Every registered kind loads, and takes the options the backends file allows."""

from __future__ import annotations

import pytest

from copilot_cli_proxy.config.registry import KINDS


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_loads_a_callable(kind: str) -> None:
    assert callable(KINDS[kind].load())


def test_cli_kinds_own_their_credentials_and_nothing_of_each_other() -> None:
    copilot, claude = KINDS["copilot-cli"], KINDS["claude-cli"]
    assert "COPILOT_" in copilot.env_prefixes and "GH_TOKEN" in copilot.env_names
    assert {"CLAUDE_", "ANTHROPIC_"} <= set(claude.env_prefixes)
    assert not set(copilot.env_prefixes) & set(claude.env_prefixes)
