"""The interface every backend implements, and the tiny event vocabulary it speaks.

A backend turns one ``ChatRequest`` into an async stream of events:
``TextDelta``… ``Usage``? ``Finish``. A failure is raised as a ``ProxyError``
(see ``errors.py``), before or after some text; the protocol layer decides how
to put it on the wire. Nothing else crosses this boundary, so a new backend
(a long-lived CLI process, an HTTP API, a failover pool) is one new module.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol

from anyio.abc import TaskGroup

from copilot_cli_proxy.core.request import ChatRequest
from copilot_cli_proxy.core.types import (
    BackendEvent,
    Finish,
    FinishReason,
    ModelInfo,
    TextDelta,
    ToolCallEvent,
    Usage,
)

__all__ = [
    "Backend",
    "BackendEvent",
    "Finish",
    "FinishReason",
    "ModelInfo",
    "RunRecord",
    "TextDelta",
    "ToolCallEvent",
    "Usage",
]


@dataclass(slots=True)
class RunRecord:
    """What a backend learned while serving one request, for the request log."""

    argv: list[str] = field(default_factory=list)
    workdir: str | None = None
    exit_code: int | None = None
    stderr_tail: str = ""


class Backend(Protocol):
    """One way of answering chat requests."""

    name: str

    async def start(self, tg: TaskGroup) -> None:
        """Called once when the server starts; ``tg`` lives as long as the server."""

    async def warm_up(self) -> None:
        """Background start-up work (version probe, model discovery, warm processes)."""

    async def stop(self) -> None:
        """Called once when the server stops: nothing may be left running."""

    async def list_models(self) -> list[ModelInfo]:
        """The models this backend can serve, default model first."""
        ...

    def stream(self, request: ChatRequest, record: RunRecord) -> AsyncGenerator[BackendEvent, None]:
        """Answer one request. Raises ``ProxyError`` on failure."""
        ...

    def health(self) -> dict[str, object]:
        """Cheap status for /health: no blocking call, no process spawned.

        Keys /health reads to decide between ``ok`` and ``degraded``:
        ``cli`` (``{"found": bool, "executable": bool, ...}``), ``logged_in`` (``False``
        when the CLI is known not to be logged in; absent or ``None`` when unknown), and
        ``problems``: a list of short sentences, one per thing that keeps requests from
        being answered now (e.g. ``"not logged in"``, ``"background task failed: ..."``).
        An empty or absent list means nothing is known to be wrong.
        """
        ...
