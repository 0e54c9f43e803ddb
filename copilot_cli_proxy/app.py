"""create_app(settings): routes, error handling, and the backend's lifetime."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from loguru import logger
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from copilot_cli_proxy.backends.claude_cli import ClaudeCliBackend
from copilot_cli_proxy.backends.claude_warm import ClaudeWarmBackend
from copilot_cli_proxy.backends.cli_backend import CliBackend
from copilot_cli_proxy.backends.copilot_cli import CopilotCliBackend
from copilot_cli_proxy.backends.copilot_headless import CopilotHeadlessBackend
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.routes.chat import chat_completions
from copilot_cli_proxy.routes.common import Services, error_response
from copilot_cli_proxy.routes.health import health
from copilot_cli_proxy.routes.models import get_model, list_models
from copilot_cli_proxy.runtime.limiter import ProcessLimiter
from copilot_cli_proxy.runtime.workdir import ensure_base, sweep_stale
from copilot_cli_proxy.settings import Settings


def build_backend(settings: Settings) -> CliBackend:
    persistent = settings.runner == "persistent"
    if settings.service == "claude":
        return ClaudeWarmBackend(settings) if persistent else ClaudeCliBackend(settings)
    return CopilotHeadlessBackend(settings) if persistent else CopilotCliBackend(settings)


async def _proxy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProxyError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error = ProxyError(
            "method_not_allowed", f"{request.method} is not allowed on {request.url.path}."
        )
    else:
        error = ProxyError("not_found", f"There is no route {request.method} {request.url.path}.")
    return error_response(error)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.opt(exception=exc).error("unexpected error on {} {}", request.method, request.url.path)
    return error_response(ProxyError("internal_error", f"Internal error: {type(exc).__name__}."))


def create_app(settings: Settings, backend: CliBackend | None = None) -> Starlette:
    chosen = backend or build_backend(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ensure_base(settings.temp_base)
        stale = sweep_stale(settings.temp_base)
        if stale:
            logger.info("removed {} request dirs left by an earlier run", stale)
        async with anyio.create_task_group() as tg:
            await chosen.start(tg)
            tg.start_soon(chosen.warm_up)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                await chosen.stop()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            # Some clients are configured with the bare server URL as their base.
            Route("/models", list_models, methods=["GET"]),
            Route("/chat/completions", chat_completions, methods=["POST"]),
        ],
        exception_handlers={
            ProxyError: _proxy_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.services = Services(
        settings=settings,
        backend=chosen,
        limiter=ProcessLimiter(
            settings.max_concurrent, settings.max_queue, settings.queue_timeout_s
        ),
        started_at=time.time(),
    )
    return app
