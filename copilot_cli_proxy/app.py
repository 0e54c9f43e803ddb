"""create_app(settings): routes, error handling, and the backend's lifetime."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
from loguru import logger
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from copilot_cli_proxy.config.backends_file import load_backends_file
from copilot_cli_proxy.core.backend import Backend
from copilot_cli_proxy.errors import ProxyError, clip
from copilot_cli_proxy.gate.auth import ApiKeyGate
from copilot_cli_proxy.gate.auththrottle import AuthThrottle
from copilot_cli_proxy.gate.clientip import ProxyTrust
from copilot_cli_proxy.gate.ratelimit import RateLimitGate, RequestRateLimiter, build_storage
from copilot_cli_proxy.gate.sizes import BodySizeGate
from copilot_cli_proxy.gateway.gateway import Gateway, config_from_settings
from copilot_cli_proxy.observe.metrics import Metrics, metrics_endpoint
from copilot_cli_proxy.observe.middleware import ObserveMiddleware, ObserveOptions
from copilot_cli_proxy.observe.redact import Redactor, collect_secrets
from copilot_cli_proxy.observe.requestlog import RequestLogWriter
from copilot_cli_proxy.routes.chat import chat_completions
from copilot_cli_proxy.routes.common import Services, error_response
from copilot_cli_proxy.routes.health import health
from copilot_cli_proxy.routes.models import get_model, list_models
from copilot_cli_proxy.runtime.workdir import ensure_base, sweep_stale
from copilot_cli_proxy.settings import Settings


def build_gateway(settings: Settings, backend: Backend | None = None) -> Gateway:
    """The backends this server runs: one given, the backends file's, or the one that
    SERVICE, RUNNER, … describe."""
    if backend is not None:
        return Gateway.single(settings, backend)
    if settings.backends_file:
        return Gateway.build(settings, load_backends_file(settings.backends_file))
    return Gateway.build(settings, config_from_settings(settings))


async def _proxy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProxyError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error = ProxyError(
            "method_not_allowed",
            f"{clip(request.method)} is not allowed on {clip(request.url.path)}.",
        )
    else:
        error = ProxyError(
            "not_found", f"There is no route {clip(request.method)} {clip(request.url.path)}."
        )
    return error_response(error)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.opt(exception=exc).error(
        "unexpected error on {} {}", clip(request.method), clip(request.url.path)
    )
    return error_response(ProxyError("internal_error", f"Internal error: {type(exc).__name__}."))


def build_middleware(
    settings: Settings,
    metrics: Metrics,
    writer: RequestLogWriter | None,
    redactor: Redactor,
    rate_limiter: RequestRateLimiter | None,
    backend_id: str,
) -> list[Middleware]:
    """Outermost first: observe everything, answer CORS preflights, then the gate."""
    open_paths = {"/health"} | (set() if settings.metrics_require_key else {"/metrics"})
    trust = ProxyTrust.of(settings.forwarded_allow_ips) if settings.trust_proxy_headers else None
    options = ObserveOptions(
        backend=backend_id,
        proxy_trust=trust,
        log_request_body=settings.log_request_body,
        log_response_body=settings.log_response_body,
        log_probes=settings.log_probes,
        max_body_bytes=settings.max_body_bytes,
    )
    throttle = (
        AuthThrottle(settings.auth_failure_max, settings.auth_failure_window)
        if settings.auth_failure_max > 0
        else None
    )
    stack = [
        Middleware(
            ObserveMiddleware, metrics=metrics, writer=writer, redactor=redactor, options=options
        )
    ]
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                # Browser SDKs add their own headers (x-stainless-*): name them all.
                allow_headers=["*"],
                expose_headers=[
                    "X-Request-ID",
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                    "Retry-After",
                    "x-ignored-params",
                    "x-should-retry",
                ],
            )
        )
    stack += [
        Middleware(
            ApiKeyGate,
            keys=settings.api_key,
            open_paths=open_paths,
            throttle=throttle,
            trust=trust,
        ),
        Middleware(
            RateLimitGate,
            limiter=rate_limiter,
            exempt_paths={"/health", "/metrics"},
            trust=trust,
        ),
        Middleware(
            BodySizeGate, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
        ),
    ]
    return stack


async def _start_observability(
    writer: RequestLogWriter | None, rate_limiter: RequestRateLimiter | None
) -> None:
    if writer is not None:
        today = datetime.now(UTC).date()
        removed = await anyio.to_thread.run_sync(writer.remove_expired, today)
        if removed:
            logger.info("removed {} request log folders past LOG_RETENTION_DAYS", removed)
    if rate_limiter is not None and not await rate_limiter.check():
        logger.error(
            "the rate limit storage (RATE_LIMIT_STORAGE_URI) does not answer; "
            "requests pass unlimited until it does"
        )


def create_app(
    settings: Settings, backend: Backend | None = None, gateway: Gateway | None = None
) -> Starlette:
    chosen = gateway or build_gateway(settings, backend)
    metrics = Metrics(chosen)
    redactor = Redactor(collect_secrets(settings, os.environ))
    writer = (
        RequestLogWriter(Path(settings.log_dir) / "requests", settings.log_retention_days, redactor)
        if settings.log_requests
        else None
    )
    rate_limiter = (
        RequestRateLimiter(
            settings.rate_limit_max,
            settings.rate_limit_window,
            build_storage(settings.rate_limit_storage_uri),
        )
        if settings.rate_limit_max > 0
        else None
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ensure_base(settings.temp_base)
        stale = sweep_stale(settings.temp_base)
        if stale:
            logger.info("removed {} request dirs left by an earlier run", stale)
        await _start_observability(writer, rate_limiter)
        async with anyio.create_task_group() as tg:
            await chosen.start(tg)
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
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        middleware=build_middleware(
            settings, metrics, writer, redactor, rate_limiter, chosen.primary.id
        ),
        exception_handlers={
            ProxyError: _proxy_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.services = Services(settings=settings, gateway=chosen, started_at=time.time())
    app.state.metrics = metrics
    return app
