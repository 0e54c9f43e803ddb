"""Model lists (configured, discovered and cached, GitHub Models' catalog) and health."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from copilot_cli_proxy.backends.openai_http import OpenAIUpstreamBackend, build
from copilot_cli_proxy.config.backends_file import BackendSpec
from copilot_cli_proxy.core.types import ModelInfo
from copilot_cli_proxy.settings import Settings
from tests.fakeupstream.server import FakeUpstream
from tests.unit.backends.upstream.helpers import TOKEN, make_backend, relay_all


async def test_configured_models_are_served_without_asking_the_upstream(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    backend = make_backend(fake, tmp_path, models=["openai/gpt-4.1", "local-model"])
    try:
        assert await backend.list_models() == [
            ModelInfo("openai/gpt-4.1", "openai"),
            ModelInfo("local-model", "up"),
        ]
        assert backend.settings.model == "openai/gpt-4.1"
    finally:
        await backend.stop()
    assert fake.requests_to("/models") == []


async def test_discovered_models_are_cached(
    fake: FakeUpstream, backend: OpenAIUpstreamBackend
) -> None:
    first = await backend.list_models()
    second = await backend.list_models()
    assert [m.id for m in first] == ["gpt-4.1", "gpt-4.1-mini"] and second == first
    assert len(fake.requests_to("/models")) == 1
    assert backend.health().as_json()["models_cached"] == 2


async def test_github_models_preset_lists_the_catalog_with_the_token(
    fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    fake.models = ("openai/gpt-4.1", "meta/llama-3.3-70b-instruct")
    backend = make_backend(fake, tmp_path, preset="github-models", base_url=f"{fake.url}/inference")
    try:
        models = await backend.list_models()
        await relay_all(backend, model="openai/gpt-4.1")
    finally:
        await backend.stop()
    assert models == [
        ModelInfo("openai/gpt-4.1", "openai", "Fake openai/gpt-4.1"),
        ModelInfo("meta/llama-3.3-70b-instruct", "meta", "Fake meta/llama-3.3-70b-instruct"),
    ]  # the embeddings model in the catalog is left out
    (catalog,) = fake.requests_to("/catalog/models")
    assert catalog.authorization == f"Bearer {TOKEN}"
    assert catalog.headers["accept"] == "application/vnd.github+json"
    (chat,) = fake.chat_requests()
    assert chat.path == "/inference/chat/completions"
    assert chat.authorization == f"Bearer {TOKEN}"


async def test_an_upstream_that_cannot_list_models_is_degraded_not_fatal(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = BackendSpec(id="down", kind="openai", options={"base_url": f"http://127.0.0.1:{port}"})
    backend = build(spec, Settings(state_dir=str(tmp_path)))
    try:
        await backend.warm_up()
        assert await backend.list_models() == []
        health = backend.health().as_json()
    finally:
        await backend.stop()
    assert health["problems"] and health["problems"][0].startswith("listing models failed")
    assert {"backend", "kind", "base_url", "logged_in", "problems"} <= set(health)
    assert (health["backend"], health["kind"]) == ("down", "openai")


def test_a_healthy_backend_has_no_problems(backend: OpenAIUpstreamBackend) -> None:
    health = backend.health().as_json()
    assert health["problems"] == [] and health["logged_in"] is None
    assert health["base_url"] == backend.config.base_url
