"""GET /health: cheap status (no blocking call, no CLI spawned).

``status`` is ``degraded``, with ``problems`` saying why, whenever the backend is known
to be unable to answer: its CLI is missing or not executable, not logged in, or the
backend reports problems of its own (see ``Backend.health``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from copilot_cli_proxy import __version__
from copilot_cli_proxy.gateway.gateway import Node
from copilot_cli_proxy.routes.common import JSONBody, services


def health_problems(status: Mapping[str, Any]) -> list[str]:
    """What keeps the backend from answering, from its ``health()`` dict. Pure."""
    problems: list[str] = []
    cli = status.get("cli")
    name = status.get("backend") or "the"
    # An HTTP backend's status names its kind and has no CLI: it reports its own problems.
    runs_a_cli = "cli" in status or "kind" not in status
    if runs_a_cli:
        cli = cli if isinstance(cli, Mapping) else {}
        # A CLI that cannot run is the root cause: what follows from it (no login
        # state, failed background starts) would only bury it.
        if not cli.get("found"):
            return [f"the {name} CLI was not found"]
        if cli.get("executable") is False:
            return [f"the {name} CLI at {cli.get('path')} is not executable"]
        if status.get("logged_in") is False:
            problems.append(f"the {name} CLI is not logged in")
    reported = status.get("problems")
    if isinstance(reported, list | tuple):
        problems.extend(p for p in reported if isinstance(p, str) and p.strip())
    return list(dict.fromkeys(problems))  # once each, in order


def node_health(node: Node) -> dict[str, Any]:
    status = dict(node.backend.health())
    problems = health_problems(status)
    return {
        "id": node.id,
        "kind": node.spec.kind,
        "state": "degraded" if problems else "ok",
        **status,
        "problems": problems,
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
