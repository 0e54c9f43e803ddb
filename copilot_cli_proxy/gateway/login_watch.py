"""Tell the operator when a backend is not logged in, with the command that fixes it.

Each backend finds out its own login state off the request path (claude: ``claude auth
status`` after warm-up and every few minutes; copilot: ``auth.getStatus`` or the stored
login, and what each run shows; an HTTP backend: its credential) and reports it in its
cheap ``health()``. This reads those states, and logs a warning the first time a
backend is known not to be logged in (at start-up, or later when a login expires),
naming ``copilot-cli-proxy login <backend-id>``; and a line when it is logged in again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import anyio
from loguru import logger

if TYPE_CHECKING:  # gateway.py starts the watch: a runtime import would be circular
    from copilot_cli_proxy.gateway.gateway import Gateway

WATCH_INTERVAL_S = 5.0  # health() is a dict of known values: reading it costs nothing


def login_command(backend_id: str) -> str:
    return f"copilot-cli-proxy login {backend_id}"


def not_logged_in_warning(backend_id: str) -> str:
    return (
        f"backend {backend_id} is not logged in: its requests get 503 until it is. Run "
        f"`{login_command(backend_id)}` as the user that runs the server (then "
        "`copilot-cli-proxy doctor` to check)"
    )


def login_changes(
    known: Mapping[str, bool | None], now: Mapping[str, bool | None]
) -> list[tuple[str, bool]]:
    """The backends whose login became known false, or true again after false. Pure."""
    changes: list[tuple[str, bool]] = []
    for backend_id, state in now.items():
        before = known.get(backend_id)
        if state is False and before is not False:
            changes.append((backend_id, False))
        elif state is True and before is False:
            changes.append((backend_id, True))
    return changes


def login_states(gateway: Gateway) -> dict[str, bool | None]:
    states: dict[str, bool | None] = {}
    for backend_id, status in gateway.health().items():
        states[backend_id] = status.logged_in
    return states


async def watch_logins(gateway: Gateway, interval_s: float = WATCH_INTERVAL_S) -> None:
    """Until cancelled (the server stops)."""
    known: dict[str, bool | None] = {}
    while True:
        try:
            now = login_states(gateway)
        except Exception:  # a backend's health() must never end the server's task group
            logger.exception("reading the backends' login states failed")
        else:
            for backend_id, logged_in in login_changes(known, now):
                if logged_in:
                    logger.info("backend {} is logged in", backend_id)
                else:
                    logger.warning("{}", not_logged_in_warning(backend_id))
            known = {k: v if v is not None else known.get(k) for k, v in now.items()}
        await anyio.sleep(interval_s)
