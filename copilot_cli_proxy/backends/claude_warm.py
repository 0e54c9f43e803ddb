"""Claude Code CLI, warm: processes started ahead of time, waiting on stdin.

``claude -p --input-format=stream-json …`` boots and then waits for its first user
line, so a request finds a process that has already paid the boot. Each process
serves exactly ONE request (a stream-json process keeps one conversation: reusing
it would leak one client's conversation into the next) and is then replaced.

What must be fixed at start (model, system prompt, effort) is the pool key: a warm
process is kept ready for the POOL_SIZE most recently used keys; the first request
with a new key starts cold. Each process gets its own CLAUDE_CONFIG_DIR (with the
operator's credentials linked in), so parallel processes never write one shared
``~/.claude.json`` (concurrent writers corrupt it).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from loguru import logger

from copilot_cli_proxy.backends.base import BackendEvent, RunRecord
from copilot_cli_proxy.backends.claude_cli import (
    EFFORTS,
    SYSTEM_PROMPT_FILE,
    ClaudeCliBackend,
    build_claude_argv,
    claude_env,
    write_system_prompt,
)
from copilot_cli_proxy.backends.claude_guard import neutralise_prompt
from copilot_cli_proxy.backends.cli_backend import read_events
from copilot_cli_proxy.backends.prompt import build_cli_prompt
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.requests import ChatRequest
from copilot_cli_proxy.runtime.process import CliRun
from copilot_cli_proxy.runtime.workdir import PREFIX, ensure_base
from copilot_cli_proxy.settings import Settings

# Files of the operator's claude config that a per-process config dir links to.
SHARED_CONFIG_FILES = (".credentials.json", "settings.json")


@dataclass(frozen=True, slots=True)
class WarmKey:
    model: str
    system: str
    effort: str | None


def build_warm_argv(cli: str, key: WarmKey, system_file: Path, tools: tuple[str, ...]) -> list[str]:
    argv = build_claude_argv(
        cli, model=key.model, system_prompt_file=system_file, allowed_tools=tools, effort=key.effort
    )
    return [*argv, "--input-format=stream-json"]


def user_message_line(prompt: str) -> bytes:
    message = {
        "type": "user",
        "message": {"role": "user", "content": prompt},
        "parent_tool_use_id": None,
        "session_id": "",
    }
    return json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n"


def operator_config_dir(env: dict[str, str]) -> Path:
    configured = env.get("CLAUDE_CONFIG_DIR")
    return Path(configured) if configured else Path(env.get("HOME", "~")).expanduser() / ".claude"


def make_config_dir(target: Path, operator_dir: Path) -> None:
    target.mkdir(mode=0o700)
    for name in SHARED_CONFIG_FILES:
        source = operator_dir / name
        if source.exists():
            (target / name).symlink_to(source)


class WarmClaude:
    """One claude process waiting for its single request, and the dir it lives in."""

    def __init__(self, run: CliRun, root: Path, workdir: Path, argv: list[str]) -> None:
        self.run = run
        self.root = root
        self.workdir = workdir
        self.argv = argv

    @classmethod
    async def spawn(cls, cli: str, key: WarmKey, base: Path, tools: tuple[str, ...]) -> WarmClaude:
        ensure_base(base)
        root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
        try:
            workdir = root / "work"
            workdir.mkdir()
            system_file = workdir / SYSTEM_PROMPT_FILE
            write_system_prompt(system_file, key.system)
            env = claude_env()
            config = root / "config"
            make_config_dir(config, operator_config_dir(env))
            env["CLAUDE_CONFIG_DIR"] = str(config)
            argv = build_warm_argv(cli, key, system_file, tools)
            run = await CliRun.start(argv, cwd=workdir, env=env, keep_stdin=True)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cls(run, root, workdir, argv)

    @property
    def alive(self) -> bool:
        return self.run.alive

    async def aclose(self) -> None:
        await self.run.aclose()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, self.root, True)


class ClaudeWarmBackend(ClaudeCliBackend):
    """RUNNER=persistent for claude."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._warm: OrderedDict[WarmKey, WarmClaude] = OrderedDict()
        self._starting: set[WarmKey] = set()
        self._tg: TaskGroup | None = None

    async def start(self, tg: TaskGroup) -> None:
        await super().start(tg)
        self._tg = tg

    async def warm_up(self) -> None:
        await super().warm_up()
        if self.cli_path is not None:
            self._prepare(WarmKey(self.settings.model, "", None))

    async def stop(self) -> None:
        while self._warm:
            _, process = self._warm.popitem()
            await process.aclose()

    def health(self) -> dict[str, Any]:
        status = super().health()
        status["runner"] = "persistent"
        status["warm_processes"] = sum(1 for p in self._warm.values() if p.alive)
        return status

    def _prepare(self, key: WarmKey) -> None:
        """Start a warm process for ``key`` in the background, evicting the oldest key."""
        if self._tg is None or key in self._warm or key in self._starting:
            return
        self._starting.add(key)
        self._tg.start_soon(self._spawn_warm, key)

    async def _spawn_warm(self, key: WarmKey) -> None:
        try:
            process = await WarmClaude.spawn(
                self.require_cli(), key, self.settings.temp_base, self.settings.allowed_tools
            )
        except ProxyError as exc:
            logger.warning("could not start a warm claude process: {}", exc.message)
            return
        finally:
            self._starting.discard(key)
        self._warm[key] = process
        self._warm.move_to_end(key)
        while len(self._warm) > self.settings.pool_size:
            _, oldest = self._warm.popitem(last=False)
            await oldest.aclose()

    async def _take(self, key: WarmKey, cli: str) -> tuple[WarmClaude, bool]:
        process = self._warm.pop(key, None)
        if process is not None and process.alive:
            return process, True
        if process is not None:
            await process.aclose()
        return await WarmClaude.spawn(
            cli, key, self.settings.temp_base, self.settings.allowed_tools
        ), False

    async def stream(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        cli = self.require_cli()
        model = await self.catalog.resolve(request.model)
        prompt = build_cli_prompt(request.messages)
        effort = request.reasoning_effort if request.reasoning_effort in EFFORTS else None
        key = WarmKey(model, prompt.system, effort)
        process, warm = await self._take(key, cli)
        self._prepare(key)  # the next request with this key finds a warm process again
        record.workdir = str(process.workdir)
        record.argv = process.argv
        logger.debug(
            "claude request served by a {} process (pid {})",
            "warm" if warm else "cold",
            process.run.pid,
        )
        try:
            line = user_message_line(neutralise_prompt(prompt.prompt))
            if not await process.run.write_stdin(line, close=True):
                logger.debug("the claude process closed its stdin before the prompt")
            parser = self.new_parser()
            async with aclosing(
                read_events(process.run, parser, record, process.workdir)
            ) as events:
                async for event in events:
                    yield event
        finally:
            await process.aclose()
