"""An in-process app with the real middleware stack over a scripted backend (no CLI).

The backend answers ``echo: <last message>`` at once; a last message holding one of
the markers below makes it misbehave on purpose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx
from anyio.abc import TaskGroup
from starlette.applications import Starlette

from copilot_cli_proxy.app import create_app
from copilot_cli_proxy.core.backend import (
    BackendHealth,
    CliRunRecord,
    RunRecord,
)
from copilot_cli_proxy.core.request import ChatRequest
from copilot_cli_proxy.core.types import BackendEvent, Finish, ModelInfo, TextDelta, Usage
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.settings import Settings

MODEL = "scripted-1"
SLOW = "<<scripted:slow>>"
FAIL = "<<scripted:fail>>"
BOOM = "<<scripted:boom>>"


class ScriptedBackend:
    """A plain ``Backend`` (core/backend.py): no CLI, no process, no base class.

    With a ``runner`` it reports CLI details in the run record, as a backend that runs a
    CLI does (the ``cli_*`` log fields and metrics); without one it has none.
    """

    kind = "scripted"
    capabilities: frozenset[str] = frozenset({"response_format"})

    def __init__(self, settings: Settings, *, runner: str | None = None) -> None:
        self.settings = settings
        self.runner = runner
        self.runs = 0
        self.logged_in: bool | None = None
        self.reported: list[str] = []  # problems a test makes it report
        self.stopped = False

    @property
    def id(self) -> str:
        return "scripted"

    @property
    def default_model(self) -> str:
        return self.settings.default_model or MODEL

    async def start(self, tg: TaskGroup) -> None:
        return None

    async def warm_up(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(id=MODEL, owned_by="tests")]

    def accepts_model(self, model: str) -> bool:
        return False

    async def resolve_model(self, model: str) -> str:
        if model != MODEL:
            raise ProxyError("model_not_found", f"No model {model!r}.", param="model")
        return model

    def check_request(self, request: ChatRequest) -> None:
        return None

    def health(self) -> BackendHealth:
        return BackendHealth.judged(
            self.id, logged_in=self.logged_in, problems=self.reported, details={"runs": self.runs}
        )

    def login_command(self) -> str:
        return "true"

    async def login(self, out: TextIO) -> int:
        return 0

    async def discover_models(self) -> list[ModelInfo]:
        return await self.list_models()

    async def stream(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        self.runs += 1
        text = request.messages[-1].content
        cli = record.cli_run() if self.runner is not None else CliRunRecord()
        cli.argv = ["scripted", f"--prompt=<{len(text)} chars>"]
        cli.workdir = "/tmp/scripted-run"
        if SLOW in text:
            await anyio.sleep(30)
        if FAIL in text:
            cli.exit_code = 3
            cli.stderr_tail = "scripted failure"
            raise ProxyError("cli_failed", "The scripted CLI failed.")
        if BOOM in text:
            raise RuntimeError("scripted bug")
        yield TextDelta(f"echo: {text[:40]}")
        yield Usage(prompt_tokens=3, completion_tokens=2)
        cli.exit_code = 0
        yield Finish()


def scripted_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "default_model": MODEL,
        "log_dir": str(tmp_path / "logs"),
        "temp_dir_base": str(tmp_path / "runs"),
        "rate_limit_max": 0,
        "auth_failure_max": 0,
    }
    values.update(overrides)
    return dataclasses.replace(Settings(), **values)


def scripted_app(tmp_path: Path, *, runner: str | None = None, **overrides: Any) -> Starlette:
    settings = scripted_settings(tmp_path, **overrides)
    return create_app(settings, ScriptedBackend(settings, runner=runner))


def client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://proxy.test")


def chat_body(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


def request_logs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "logs" / "requests").glob("*/*.json"))
