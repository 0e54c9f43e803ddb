from __future__ import annotations

import anyio
import pytest

from copilot_cli_proxy.backends.base import ModelInfo
from copilot_cli_proxy.backends.models import (
    FAILURE_TTL_S,
    ModelCatalog,
    owned_by,
    with_default_first,
)
from copilot_cli_proxy.errors import ProxyError


@pytest.mark.parametrize(
    ("model_id", "vendor"),
    [
        ("claude-sonnet-5", "anthropic"),
        ("opus[1m]", "anthropic"),
        ("sonnet", "anthropic"),
        ("haiku", "anthropic"),
        ("default", "anthropic"),
        ("gpt-5-mini", "openai"),
        ("GPT-6-SOL", "openai"),
        ("o3-mini", "openai"),
        ("gpt-5.3-codex", "openai"),
        ("gemini-3.8-flash", "google"),
        ("grok-4.7", "xai"),
        ("kimi-k3", "moonshotai"),
        ("mai-code-1.1-flash", "microsoft"),
        ("llama-4", "meta"),
        ("deepseek-r2", "deepseek"),
    ],
)
def test_owned_by_known_vendors(model_id: str, vendor: str) -> None:
    assert owned_by(model_id) == vendor


@pytest.mark.parametrize("model_id", ["auto", "", "my-model", "x-claude"])
def test_owned_by_falls_back(model_id: str) -> None:
    assert owned_by(model_id) == "system"
    assert owned_by(model_id, "github-copilot") == "github-copilot"


@pytest.mark.parametrize(
    ("ids", "default", "expected"),
    [
        (["a", "b", "c"], "b", ["b", "a", "c"]),
        (["a", "b"], "z", ["z", "a", "b"]),
        (["a", "a", "b", "a"], "a", ["a", "b"]),
        ([], "d", ["d"]),
        (["b", "a", "b"], "c", ["c", "b", "a"]),
    ],
)
def test_with_default_first(ids: list[str], default: str, expected: list[str]) -> None:
    assert with_default_first(ids, default) == expected


class Discovery:
    """A discover() callable whose answers the test controls."""

    def __init__(self, *answers: list[ModelInfo] | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> list[ModelInfo]:
        self.calls += 1
        await anyio.sleep(0)
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def infos(*ids: str) -> list[ModelInfo]:
    return [ModelInfo(id=i, owned_by=owned_by(i)) for i in ids]


async def test_discovered_models_with_the_default_first() -> None:
    catalog = ModelCatalog(Discovery(infos("gpt-5.5", "gpt-5-mini", "grok-4.7")), "gpt-5-mini", 600)
    assert [m.id for m in await catalog.models()] == ["gpt-5-mini", "gpt-5.5", "grok-4.7"]
    assert catalog.cached_count == 3
    assert catalog.last_error is None


async def test_a_default_the_cli_does_not_list_is_still_served() -> None:
    catalog = ModelCatalog(Discovery(infos("a", "b")), "gpt-9", 600)
    models = await catalog.models()
    assert [m.id for m in models] == ["gpt-9", "a", "b"]
    assert models[0].owned_by == "openai"


async def test_discovery_is_cached_for_the_ttl() -> None:
    discovery = Discovery(infos("a"))
    catalog = ModelCatalog(discovery, "a", 600)
    for _ in range(5):
        await catalog.models()
    assert discovery.calls == 1


async def test_ttl_zero_rediscovers_every_time() -> None:
    discovery = Discovery(infos("a"), infos("a", "b"))
    catalog = ModelCatalog(discovery, "a", 0)
    assert [m.id for m in await catalog.models()] == ["a"]
    assert [m.id for m in await catalog.models()] == ["a", "b"]
    assert discovery.calls == 2


async def test_concurrent_callers_share_one_discovery() -> None:
    discovery = Discovery(infos("a", "b"))
    catalog = ModelCatalog(discovery, "a", 600)
    results: list[list[ModelInfo]] = []

    async def ask() -> None:
        results.append(await catalog.models())

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(ask)
    assert discovery.calls == 1
    assert all(r == results[0] for r in results)


@pytest.mark.parametrize(
    "failure", [RuntimeError("copilot exploded"), TimeoutError(), ProxyError("cli_not_found", "x")]
)
async def test_failed_discovery_serves_only_the_default(failure: Exception) -> None:
    catalog = ModelCatalog(Discovery(failure), "gpt-5-mini", 600)
    models = await catalog.models()
    assert models == [ModelInfo(id="gpt-5-mini", owned_by="openai")]
    assert catalog.last_error
    assert catalog.cached_count == 1


async def test_an_empty_list_counts_as_a_failure() -> None:
    catalog = ModelCatalog(Discovery([]), "sonnet", 600)
    assert [m.id for m in await catalog.models()] == ["sonnet"]
    assert catalog.last_error == "the CLI listed no models"


async def test_a_failure_is_retried_sooner_and_a_later_success_replaces_the_fallback() -> None:
    assert FAILURE_TTL_S < 600
    discovery = Discovery(RuntimeError("boom"), infos("a", "b"))
    catalog = ModelCatalog(discovery, "a", 0)
    assert [m.id for m in await catalog.models()] == ["a"]
    assert catalog.last_error == "boom"
    assert [m.id for m in await catalog.models()] == ["a", "b"]
    assert catalog.last_error is None


async def test_a_later_failure_keeps_the_models_already_known() -> None:
    discovery = Discovery(infos("a", "b", "c"), RuntimeError("flaky"))
    catalog = ModelCatalog(discovery, "a", 0)
    first = await catalog.models()
    assert await catalog.models() == first
    assert catalog.last_error == "flaky"


async def test_resolve_accepts_ids_and_aliases() -> None:
    found = [
        ModelInfo("sonnet", "anthropic", "Sonnet", ("claude-sonnet-5",)),
        ModelInfo("haiku", "anthropic", "Haiku", ("claude-haiku-4-5-20251001",)),
    ]
    catalog = ModelCatalog(Discovery(found), "sonnet", 600)
    assert await catalog.resolve("sonnet") == "sonnet"
    assert await catalog.resolve("haiku") == "haiku"
    assert await catalog.resolve("claude-sonnet-5") == "claude-sonnet-5"


@pytest.mark.parametrize("requested", ["gpt-4", "", "SONNET", "sonnet ", "--yolo", "anthropic"])
async def test_resolve_refuses_unknown_models_with_a_404_listing_the_valid_ones(
    requested: str,
) -> None:
    catalog = ModelCatalog(Discovery(infos("sonnet", "haiku")), "sonnet", 600)
    with pytest.raises(ProxyError) as caught:
        await catalog.resolve(requested)
    error = caught.value
    assert (error.code, error.status, error.param) == ("model_not_found", 404, "model")
    assert "sonnet, haiku" in error.message


async def test_resolve_after_a_failed_discovery_accepts_only_the_default() -> None:
    catalog = ModelCatalog(Discovery(RuntimeError("no cli")), "gpt-5-mini", 600)
    assert await catalog.resolve("gpt-5-mini") == "gpt-5-mini"
    with pytest.raises(ProxyError):
        await catalog.resolve("gpt-5.5")
