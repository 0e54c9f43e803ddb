"""The models a backend serves: discovered from the CLI, cached with a TTL, never fatal."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio
from loguru import logger

from copilot_cli_proxy.backends.base import ModelInfo
from copilot_cli_proxy.errors import ProxyError

# Retry a failed discovery sooner than a successful one expires.
FAILURE_TTL_S = 30.0

_VENDORS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("claude", "opus", "sonnet", "haiku", "fable", "default"), "anthropic"),
    (("gpt", "o1", "o3", "o4", "codex", "chatgpt"), "openai"),
    (("gemini", "gemma"), "google"),
    (("grok",), "xai"),
    (("kimi",), "moonshotai"),
    (("mai-", "phi"), "microsoft"),
    (("llama",), "meta"),
    (("mistral", "codestral"), "mistralai"),
    (("deepseek",), "deepseek"),
)


def owned_by(model_id: str, fallback: str = "system") -> str:
    lowered = model_id.lower()
    for prefixes, vendor in _VENDORS:
        if lowered.startswith(prefixes):
            return vendor
    return fallback


def with_default_first(ids: list[str], default: str) -> list[str]:
    """Deduplicate, keep the CLI's order, put the configured default (if any) first."""
    seen: dict[str, None] = {default: None} if default else {}
    for model_id in ids:
        seen.setdefault(model_id, None)
    return list(seen)


Discover = Callable[[], Awaitable[list[ModelInfo]]]


class ModelCatalog:
    """Single-flight, TTL-cached discovery with a fallback to the default model."""

    def __init__(self, discover: Discover, default_model: str, ttl_s: float) -> None:
        self._discover = discover
        self._default = default_model
        self._ttl_s = ttl_s
        self._models: list[ModelInfo] | None = None
        self._aliases: set[str] = set()
        self._expires_at = 0.0
        self._lock = anyio.Lock()
        self.last_error: str | None = None
        # Further names the CLI takes although it does not list them (claude: any full
        # model name); an unknown one then fails at the model's API with a clear error.
        self.accepts: Callable[[str], bool] | None = None

    @property
    def cached_count(self) -> int:
        return len(self._models or [])

    def _fallback(self) -> list[ModelInfo]:
        # Without a default (an HTTP upstream that names its own models) there is nothing
        # better to offer than an empty list until discovery works again.
        if not self._default:
            return []
        return [ModelInfo(id=self._default, owned_by=owned_by(self._default))]

    async def models(self) -> list[ModelInfo]:
        if self._models is not None and time.monotonic() < self._expires_at:
            return self._models
        async with self._lock:
            if self._models is not None and time.monotonic() < self._expires_at:
                return self._models
            try:
                found = await self._discover()
                if not found:
                    raise ValueError("the CLI listed no models")
            except Exception as exc:  # discovery must never stop the server
                self.last_error = str(exc) or type(exc).__name__
                logger.warning(
                    "model discovery failed ({}); serving only DEFAULT_MODEL {!r}",
                    self.last_error,
                    self._default,
                )
                self._models = self._models or self._fallback()
                self._expires_at = time.monotonic() + min(FAILURE_TTL_S, self._ttl_s)
                return self._models
            by_id = {m.id: m for m in found}
            ordered = with_default_first([m.id for m in found], self._default)
            self._models = [by_id.get(i) or ModelInfo(id=i, owned_by=owned_by(i)) for i in ordered]
            self._aliases = {alias for m in found for alias in m.aliases}
            self._expires_at = time.monotonic() + self._ttl_s
            self.last_error = None
            logger.info("discovered {} models", len(self._models))
            return self._models

    async def resolve(self, requested: str) -> str:
        """The model id to pass to the CLI, or 404 listing the valid ids."""
        models = await self.models()
        ids = [m.id for m in models]
        if requested in ids or requested in self._aliases:
            return requested
        if self.accepts is not None and self.accepts(requested):
            return requested
        raise ProxyError(
            "model_not_found",
            f"The model {requested!r} does not exist or is not served here. "
            f"Available models: {', '.join(ids)}.",
            param="model",
        )
