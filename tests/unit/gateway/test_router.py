"""Routing by model name: alias, then backend-id/model, then a unique plain id."""

from __future__ import annotations

import pytest

from copilot_cli_proxy.core.types import ModelInfo
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.gateway.router import Target, list_models, resolve_model


def models(*ids: str, aliases: dict[str, tuple[str, ...]] | None = None) -> list[ModelInfo]:
    return [ModelInfo(i, "x", aliases=(aliases or {}).get(i, ())) for i in ids]


CATALOGS = {
    "copilot": models("gpt-5-mini", "claude-sonnet-4.6", "shared"),
    "claude": models("sonnet", "haiku", "shared", aliases={"sonnet": ("claude-sonnet-4-5",)}),
}
ALIASES = {"gpt-4o": "copilot/gpt-5-mini", "fast": "claude/haiku"}


@pytest.mark.parametrize(
    ("requested", "target"),
    [
        ("gpt-4o", Target("copilot", "gpt-5-mini")),
        ("copilot/shared", Target("copilot", "shared")),
        ("claude/shared", Target("claude", "shared")),
        ("gpt-5-mini", Target("copilot", "gpt-5-mini")),
        ("sonnet", Target("claude", "sonnet")),
        # A name the CLI accepts besides the listed id is passed on as asked.
        ("claude-sonnet-4-5", Target("claude", "claude-sonnet-4-5")),
        ("claude/claude-sonnet-4-5", Target("claude", "claude-sonnet-4-5")),
    ],
)
def test_resolution_order(requested: str, target: Target) -> None:
    assert resolve_model(requested, CATALOGS, ALIASES) == target


def test_an_alias_wins_over_a_plain_id_of_the_same_name() -> None:
    aliases = {"sonnet": "copilot/claude-sonnet-4.6"}
    assert resolve_model("sonnet", CATALOGS, aliases) == Target("copilot", "claude-sonnet-4.6")


def test_a_model_id_with_a_slash_that_names_no_backend_is_a_plain_id() -> None:
    catalogs = {"gh": models("openai/gpt-4.1")}
    assert resolve_model("openai/gpt-4.1", catalogs, {}) == Target("gh", "openai/gpt-4.1")
    assert resolve_model("gh/openai/gpt-4.1", catalogs, {}) == Target("gh", "openai/gpt-4.1")


def test_a_plain_id_several_backends_serve_is_ambiguous_and_lists_the_choices() -> None:
    with pytest.raises(ProxyError) as caught:
        resolve_model("shared", CATALOGS, ALIASES)
    assert caught.value.code == "ambiguous_model"
    assert caught.value.status == 400
    assert "copilot/shared" in caught.value.message and "claude/shared" in caught.value.message


def test_an_unknown_id_is_404_with_close_matches() -> None:
    with pytest.raises(ProxyError) as caught:
        resolve_model("gpt-5-mni", CATALOGS, ALIASES)
    assert caught.value.code == "model_not_found"
    assert "Did you mean: gpt-5-mini" in caught.value.message


def test_an_unknown_model_of_a_known_backend_names_that_backends_models() -> None:
    with pytest.raises(ProxyError) as caught:
        resolve_model("claude/sonet", CATALOGS, ALIASES)
    assert "claude/sonnet" in caught.value.message


def test_a_huge_model_name_is_not_echoed_whole() -> None:
    with pytest.raises(ProxyError) as caught:
        resolve_model("x" * 8_000_000, CATALOGS, ALIASES)
    assert len(caught.value.message) < 2000


def test_listing_plain_unique_ids_then_qualified_then_aliases() -> None:
    listed = [(m.id, m.owned_by) for m in list_models(CATALOGS, ALIASES)]
    assert listed == [
        ("gpt-5-mini", "copilot"),
        ("claude-sonnet-4.6", "copilot"),
        ("sonnet", "claude"),
        ("haiku", "claude"),
        ("copilot/gpt-5-mini", "copilot"),
        ("copilot/claude-sonnet-4.6", "copilot"),
        ("copilot/shared", "copilot"),
        ("claude/sonnet", "claude"),
        ("claude/haiku", "claude"),
        ("claude/shared", "claude"),
        ("gpt-4o", "copilot"),
        ("fast", "claude"),
    ]


def test_every_listed_id_resolves_to_its_target() -> None:
    for model in list_models(CATALOGS, ALIASES):
        assert resolve_model(model.id, CATALOGS, ALIASES) == model.target


@pytest.mark.parametrize("default", ["haiku", "claude/haiku", "fast"])
def test_the_default_model_is_listed_first(default: str) -> None:
    listed = list_models(CATALOGS, ALIASES, default=default)
    assert listed[0].id == default


def test_an_unresolvable_default_changes_nothing() -> None:
    assert list_models(CATALOGS, ALIASES, default="nope") == list_models(CATALOGS, ALIASES)


def test_a_name_a_backend_takes_without_listing_it_is_routed_there() -> None:
    def full_claude(name: str) -> bool:
        return name.startswith("claude-") and name.count("-") >= 3

    accepts = {"claude": full_claude}
    target = resolve_model("claude-opus-4-1-20250805", CATALOGS, ALIASES, accepts=accepts)
    assert target == Target("claude", "claude-opus-4-1-20250805")
    qualified = resolve_model("claude/claude-opus-4-1", CATALOGS, ALIASES, accepts=accepts)
    assert qualified == Target("claude", "claude-opus-4-1")
    with pytest.raises(ProxyError):
        resolve_model("gpt-9", CATALOGS, ALIASES, accepts=accepts)
