"""GET /health: cheap status (no blocking call, no CLI spawned)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from copilot_cli_proxy import __version__
from copilot_cli_proxy.routes.common import JSONBody, services


async def health(request: Request) -> Response:
    svc = services(request)
    status = svc.backend.health()
    found = bool(status.get("cli", {}).get("found"))
    return JSONBody(
        {
            "status": "ok" if found else "degraded",
            "version": __version__,
            **status,
            "uptime_seconds": round(time.time() - svc.started_at, 3),
            "processes": {
                "active": svc.limiter.active,
                "waiting": svc.limiter.waiting,
                "max_concurrent": svc.limiter.max_concurrent,
            },
        }
    )
