"""The gateway: one node per backend, each with its own limiter; routing across them."""

from __future__ import annotations

import typing
from dataclasses import replace
from typing import Any

import pytest

from copilot_cli_proxy.config.backends_file import BackendSpec, GatewayConfig
from copilot_cli_proxy.config.registry import KINDS
from copilot_cli_proxy.core.backend import Backend, RelayBackend
from copilot_cli_proxy.core.types import ModelInfo
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.gateway.gateway import Gateway, Node, config_from_settings
from copilot_cli_proxy.runtime.limiter import ProcessLimiter
from copilot_cli_proxy.settings import Settings


class ListedBackend:
    """Just enough of a backend for routing: a settings object and a model list."""

    def __init__(self, settings: Settings, *ids: str) -> None:
        self.settings = settings
        self.ids = ids

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(i, "x") for i in self.ids]

    def accepts_model(self, model: str) -> bool:
        return False


def gateway(settings: Settings, aliases: dict[str, str] | None = None) -> Gateway:
    specs = (BackendSpec("copilot", "copilot-cli"), BackendSpec("claude", "claude-cli"))
    backends: list[Any] = [
        ListedBackend(replace(settings, service="copilot"), "gpt-5-mini", "shared"),
        ListedBackend(replace(settings, service="claude"), "sonnet", "shared"),
    ]
    nodes = [Node(s, b, ProcessLimiter(2, 2, 1.0)) for s, b in zip(specs, backends, strict=True)]
    return Gateway(settings, GatewayConfig(specs, aliases or {}), nodes)


def test_without_a_file_the_environment_describes_one_backend() -> None:
    settings = Settings(service="claude", runner="oneshot", max_concurrent=3, claude_cli_path="/c")
    [spec] = config_from_settings(settings).backends
    assert (spec.id, spec.kind, spec.max_concurrent) == ("claude", "claude-cli", 3)
    assert spec.options["runner"] == "oneshot" and spec.options["cli_path"] == "/c"


async def test_routes_to_the_backend_that_serves_the_model() -> None:
    gw = gateway(Settings())
    routed = await gw.route("sonnet")
    assert (routed.node.id, routed.model, routed.requested) == ("claude", "sonnet", "sonnet")
    assert (await gw.route("copilot/shared")).node.id == "copilot"
    with pytest.raises(ProxyError) as caught:
        await gw.route("shared")
    assert caught.value.code == "ambiguous_model"


async def test_each_node_has_its_own_limiter() -> None:
    gw = gateway(Settings())
    assert gw.node("copilot").limiter is not gw.node("claude").limiter


async def test_models_of_many_backends_are_merged_with_the_default_first() -> None:
    gw = gateway(Settings(default_model="claude/sonnet"), {"fast": "claude/sonnet"})
    ids = [m.id for m in await gw.list_models()]
    assert ids[0] == "claude/sonnet"
    assert {"gpt-5-mini", "sonnet", "copilot/shared", "claude/shared", "fast"} <= set(ids)
    assert "shared" not in ids


def test_every_kind_is_built_as_a_backend() -> None:
    # The kinds are imported by name (config/registry.py); their factories' return types
    # are what makes mypy check each backend class against the one interface.
    for name, info in KINDS.items():
        returns = typing.get_type_hints(info.load())["return"]
        assert returns in (Backend, RelayBackend), name
