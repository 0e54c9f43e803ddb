"""``kind = "openai"``: any OpenAI-compatible HTTP upstream, relayed as it answers.

GitHub Models, Azure OpenAI, OpenAI, a company LiteLLM, a local vLLM or llama.cpp: they
differ in how they authenticate, which headers they need, and the base URL
(``upstream_config.py``). The client's parsed request goes upstream with the upstream's
model id; the answer comes back chunk by chunk as it arrives (``UpstreamChunk``), or
whole (``UpstreamBody``). Failures are ``ProxyError``s with a typed ``outcome``
(``upstream_errors.py``) that a failover pool can turn into node states.

One ``httpx.AsyncClient`` per backend: its pool keeps connections alive between
requests; ``stop()`` closes it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import replace
from typing import Any, TextIO, cast

import anyio
import httpx
from anyio.abc import TaskGroup
from loguru import logger

from copilot_cli_proxy.backends.device_flow import LoginFailed, device_login
from copilot_cli_proxy.backends.models import ModelCatalog
from copilot_cli_proxy.backends.openai_events import ToolCallAssembler, events_of
from copilot_cli_proxy.backends.openai_wire import (
    DONE,
    SseDecoder,
    configured_models,
    encode_payload,
    finishes,
    parse_model_list,
    stream_error,
    upstream_payload,
)
from copilot_cli_proxy.backends.upstream_auth import (
    BearerCredentials,
    Credentials,
    DeviceCodeCredentials,
    NoCredentials,
    TokenStore,
)
from copilot_cli_proxy.backends.upstream_client import UpstreamClient
from copilot_cli_proxy.backends.upstream_config import (
    BearerAuth,
    DeviceCodeAuth,
    UpstreamConfig,
    parse_upstream_config,
)
from copilot_cli_proxy.backends.upstream_errors import (
    broken_answer,
    error_from_exception,
)
from copilot_cli_proxy.config.backends_file import BackendSpec
from copilot_cli_proxy.core.backend import BackendHealth, RelayBackend, RunRecord
from copilot_cli_proxy.core.request import ChatRequest
from copilot_cli_proxy.core.types import (
    BackendEvent,
    Finish,
    ModelInfo,
    UpstreamBody,
    UpstreamChunk,
)
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.settings import Settings

CAPABILITIES = frozenset(
    {
        "tools",
        "tool_choice",
        "response_format",
        "images",
        "n",
        "logprobs",
        "sampling",
        "stop",
        "seed",
        "max_tokens",
    }
)
# After [DONE], how long to wait for the rest of the body, so the connection goes back
# to the pool instead of being closed half-read.
DRAIN_S = 1.0

Sleep = Callable[[float], Awaitable[None]]


def build(spec: BackendSpec, settings: Settings) -> RelayBackend:
    """Typed as the interface: mypy checks the class against ``RelayBackend``."""
    try:
        config = parse_upstream_config(spec.options)
    except ValueError as exc:
        raise ValueError(f"backend {spec.id!r}: {exc}") from None
    return OpenAIUpstreamBackend(spec, settings, config)


def _credentials(
    spec: BackendSpec, settings: Settings, config: UpstreamConfig, client: httpx.AsyncClient
) -> Credentials:
    if isinstance(config.auth, BearerAuth):
        return BearerCredentials(spec.id, config.auth)
    if isinstance(config.auth, DeviceCodeAuth):
        store = TokenStore(settings.state_path / "logins" / f"{spec.id}.json")
        return DeviceCodeCredentials(spec.id, config.auth, store, client)
    return NoCredentials()


class OpenAIUpstreamBackend:
    """A ``Backend`` (core/backend.py) and a ``RelayBackend``: the chat route relays its
    answer as it comes; ``stream()`` gives the same answer as events (a failover pool)."""

    kind = "openai"
    runner: str | None = None  # no CLI
    capabilities: frozenset[str] = CAPABILITIES

    def __init__(self, spec: BackendSpec, settings: Settings, config: UpstreamConfig) -> None:
        self.backend_id = spec.id
        self.name = spec.id
        self.config = config
        default = spec.default_model or (config.models[0] if config.models else "")
        self.settings = replace(settings, default_model=default)
        self.upstream = UpstreamClient(
            spec.id, config, keep_alive=spec.max_concurrent or settings.max_concurrent
        )
        self.credentials = _credentials(spec, settings, config, self.upstream.http)
        self.upstream.credentials = self.credentials
        # Configured models are the catalog as is; else the upstream's, cached with a TTL.
        discover = self._configured_models if config.models else self._discover_models
        self.catalog = ModelCatalog(discover, default, settings.models_cache_ttl)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, tg: TaskGroup) -> None:
        if self.config.base_url.startswith("http://") and self.config.auth.type != "none":
            logger.warning(
                "backend {}: the credential goes to {} over plain http",
                self.backend_id,
                self.config.base_url,
            )

    async def warm_up(self) -> None:
        await self.list_models()

    async def stop(self) -> None:
        await self.upstream.aclose()

    # -- models and health ----------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.backend_id

    @property
    def default_model(self) -> str:
        return self.settings.default_model

    async def list_models(self) -> list[ModelInfo]:
        return await self.catalog.models()

    def accepts_model(self, model: str) -> bool:
        return False  # the upstream's catalog is the whole list

    async def resolve_model(self, model: str) -> str:
        return await self.catalog.resolve(model)

    async def _configured_models(self) -> list[ModelInfo]:
        return configured_models(self.config.models, self.backend_id)

    def check_request(self, request: ChatRequest) -> None:
        """Nothing to check before a slot: the upstream judges the request itself."""

    async def _discover_models(self) -> list[ModelInfo]:
        accept = "application/vnd.github+json" if self.config.catalog == "github" else None
        response = await self.upstream.send("GET", self.config.models_url, accept=accept)
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            raise error_from_exception(self.backend_id, exc, self.config.timeout_s) from None
        finally:
            await response.aclose()
        return parse_model_list(json.loads(body), self.config.catalog, self.backend_id)

    def health(self) -> BackendHealth:
        problems = self.credentials.problems()
        if self.upstream.auth_problem:
            problems.append(self.upstream.auth_problem)
        if not self.config.models and self.catalog.last_error:
            problems.append(f"listing models failed: {self.catalog.last_error}")
        details = {
            "backend": self.backend_id,
            "kind": self.kind,
            "base_url": self.config.base_url,
            "preset": self.config.preset,
            "auth": self.config.auth.type,
            "models_cached": self.catalog.cached_count,
            "connections": self.upstream.connections(),
        }
        return BackendHealth.judged(
            self.backend_id,
            logged_in=self.credentials.logged_in(),
            problems=problems,
            details=details,
        )

    def connections(self) -> dict[str, int]:
        return self.upstream.connections()

    # -- the answer -----------------------------------------------------------------------

    async def relay(
        self, body: dict[str, Any], *, model: str, stream: bool, include_usage: bool
    ) -> AsyncGenerator[UpstreamChunk | UpstreamBody, None]:
        """Send ``body`` upstream as ``model``; yield its chunks as they arrive, or its body."""
        payload = upstream_payload(body, model=model, stream=stream, include_usage=include_usage)
        response = await self.upstream.send(
            "POST", self.config.chat_url, content=encode_payload(payload)
        )
        try:
            if stream:
                async with aclosing(self._events(response)) as events:
                    async for data in events:
                        yield UpstreamChunk(data)
            else:
                yield UpstreamBody(await self._whole(response))
        finally:
            # A client that went away cancels us: the close must still happen, or the
            # connection stays checked out of the pool and the upstream keeps generating.
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def _whole(self, response: httpx.Response) -> dict[str, Any]:
        try:
            raw = await response.aread()
        except httpx.HTTPError as exc:
            raise self.upstream.failed(self._transport_error(exc)) from None
        return self._json_object(raw, "the body")

    async def _events(self, response: httpx.Response) -> AsyncGenerator[dict[str, Any], None]:
        decoder = SseDecoder()
        complete = False
        try:
            # httpx types it as an iterator; it is a generator, and is closed as one.
            lines = cast(AsyncGenerator[str, None], response.aiter_lines())
            async with aclosing(lines):
                async for line in lines:
                    data = decoder.feed(line)
                    if data is None:
                        continue
                    if data == DONE:
                        await self._drain(lines)
                        return
                    chunk = self._chunk(data)
                    complete = complete or finishes(chunk)
                    yield chunk
                tail = decoder.end()
        except httpx.HTTPError as exc:
            raise self.upstream.failed(self._transport_error(exc)) from None
        if tail is not None and tail != DONE:
            chunk = self._chunk(tail)
            complete = complete or finishes(chunk)
            yield chunk
        # Without [DONE], only a finish_reason says the answer was not cut short.
        if tail != DONE and not complete:
            raise self.upstream.failed(
                broken_answer(self.backend_id, "the stream ended before [DONE]")
            )

    def _chunk(self, data: str) -> dict[str, Any]:
        chunk = self._json_object(data, "a stream event")
        message = stream_error(chunk)
        if message is not None:
            error = broken_answer(self.backend_id, f"an error in the stream: {message}")
            raise self.upstream.failed(error)
        return chunk

    def _json_object(self, raw: str | bytes, what: str) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            error = broken_answer(self.backend_id, f"{what} is not a JSON object")
            raise self.upstream.failed(error)
        return data

    def _transport_error(self, exc: httpx.HTTPError) -> ProxyError:
        return error_from_exception(self.backend_id, exc, self.config.timeout_s)

    @staticmethod
    async def _drain(lines: AsyncGenerator[str, None]) -> None:
        with anyio.move_on_after(DRAIN_S):
            async for _ in lines:
                pass

    async def stream(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        """The upstream's streamed answer as events: text, tool calls, usage, finish."""
        body = dict(request.raw) or {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages]
        }
        answer = self.relay(body, model=request.model, stream=True, include_usage=True)
        calls = ToolCallAssembler()
        finish: Finish | None = None
        async with aclosing(answer) as items:
            async for item in items:
                for event in events_of(item.data, calls):
                    if isinstance(event, Finish):
                        finish = event  # the usage chunk comes after it: finish last
                    else:
                        yield event
        if finish is not None:
            yield finish

    # -- login and doctor -------------------------------------------------------------------

    async def login(self, out: TextIO, *, sleep: Sleep = anyio.sleep) -> int:
        """``copilot-cli-proxy login <backend-id>``; the exit code."""
        auth = self.config.auth
        if isinstance(auth, DeviceCodeAuth):
            assert isinstance(self.credentials, DeviceCodeCredentials)
            store = self.credentials.store
            try:
                await device_login(self.upstream.http, auth, store, out, sleep=sleep)
            except LoginFailed as exc:
                print(f"Login of backend {self.backend_id!r} failed: {exc}.", file=out)
                return 1
            print(f"Logged in. The token is stored in {store.path} (mode 0600).", file=out)
            return 0
        if isinstance(auth, BearerAuth):
            if self.credentials.logged_in():
                print(
                    f"Backend {self.backend_id!r} sends the token in {auth.token_env} "
                    "(it is set). Nothing to log in.",
                    file=out,
                )
                return 0
            print(
                f"Backend {self.backend_id!r} needs a token in {auth.token_env}, which is not "
                f"set. Put it in the environment or .env: {auth.token_env}=...",
                file=out,
            )
            if self.config.preset == "github-models":
                print(
                    "GitHub Models takes a fine-grained personal access token with the "
                    '"Models: read" permission (github.com/settings/personal-access-tokens).',
                    file=out,
                )
            return 1
        print(f"Backend {self.backend_id!r} needs no login (auth type none).", file=out)
        return 0

    # -- doctor hooks ---------------------------------------------------------------------

    async def discover_models(self) -> list[ModelInfo]:
        """The models now, past the catalog's cache: the configured ones, else the upstream's."""
        if self.config.models:
            return await self._configured_models()
        return await self._discover_models()

    def login_command(self) -> str:
        """What an operator runs to log this backend in."""
        return f"copilot-cli-proxy login {self.backend_id}"
