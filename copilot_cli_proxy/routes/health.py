"""GET /health: cheap status (no blocking call, no CLI spawned).

Each backend says its own state and problems (``Backend.health()``: a missing CLI, a
missing login, a failing background task); ``status`` is ``degraded``, with
``problems`` saying why, whenever one of them knows it cannot answer.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from copilot_cli_proxy import __version__
from copilot_cli_proxy.gateway.gateway import Node
from copilot_cli_proxy.routes.common import JSONBody, services


def node_health(node: Node) -> dict[str, Any]:
    status = node.backend.health()
    return {
        "id": node.id,
        "kind": node.backend.kind,
        "state": status.state,
        **status.as_json(),
        "slots": {
            "active": node.limiter.active,
            "waiting": node.limiter.waiting,
            "max_concurrent": node.limiter.max_concurrent,
        },
    }


async def health(request: Request) -> Response:
    """Every backend with its state; the first one's fields also at the top level, as a
    server without a backends file has always answered."""
    svc = services(request)
    nodes = [node_health(node) for node in svc.gateway.nodes]
    problems = [
        p if len(nodes) == 1 else f"{node['id']}: {p}" for node in nodes for p in node["problems"]
    ]
    first = {k: v for k, v in nodes[0].items() if k not in ("id", "kind", "state", "slots")}
    return JSONBody(
        {
            "status": "degraded" if problems else "ok",
            "version": __version__,
            **first,
            "problems": problems,
            "uptime_seconds": round(time.time() - svc.started_at, 3),
            "processes": {
                key: sum(node["slots"][key] for node in nodes)
                for key in ("active", "waiting", "max_concurrent")
            },
            "backends": nodes,
        }
    )
