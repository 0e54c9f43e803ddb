"""An in-process app with the real middleware stack over a scripted backend (no CLI).

The backend answers ``echo: <last message>`` at once; a last message holding one of
the markers below makes it misbehave on purpose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette

from copilot_cli_proxy.app import create_app
from copilot_cli_proxy.backends.base import (
    BackendEvent,
    Finish,
    ModelInfo,
    RunRecord,
    TextDelta,
    Usage,
)
from copilot_cli_proxy.backends.cli_backend import CliBackend, Invocation, OutputParser
from copilot_cli_proxy.backends.prompt import CliPrompt
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.requests import ChatRequest
from copilot_cli_proxy.settings import Settings

MODEL = "scripted-1"
SLOW = "<<scripted:slow>>"
FAIL = "<<scripted:fail>>"
BOOM = "<<scripted:boom>>"


class ScriptedBackend(CliBackend):
    name = "scripted"
    executable = "scripted"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "/bin/true")
        self.runs = 0

    async def warm_up(self) -> None:
        return None

    async def _discover_models(self) -> list[ModelInfo]:
        return [ModelInfo(id=MODEL, owned_by="tests")]

    def prepare(
        self, workdir: Path, prompt: CliPrompt, model: str, request: ChatRequest, cli: str
    ) -> Invocation:
        raise NotImplementedError

    def new_parser(self) -> OutputParser:
        raise NotImplementedError

    async def stream(  # type: ignore[override]
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        self.runs += 1
        text = request.messages[-1].content
        record.argv = ["scripted", f"--prompt=<{len(text)} chars>"]
        record.workdir = "/tmp/scripted-run"
        if SLOW in text:
            await anyio.sleep(30)
        if FAIL in text:
            record.exit_code = 3
            record.stderr_tail = "scripted failure"
            raise ProxyError("cli_failed", "The scripted CLI failed.")
        if BOOM in text:
            raise RuntimeError("scripted bug")
        yield TextDelta(f"echo: {text[:40]}")
        yield Usage(prompt_tokens=3, completion_tokens=2)
        record.exit_code = 0
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


def scripted_app(tmp_path: Path, **overrides: Any) -> Starlette:
    settings = scripted_settings(tmp_path, **overrides)
    return create_app(settings, ScriptedBackend(settings))


def client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://proxy.test")


def chat_body(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


def request_logs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "logs" / "requests").glob("*/*.json"))
