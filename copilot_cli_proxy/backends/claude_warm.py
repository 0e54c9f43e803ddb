"""Claude Code CLI, warm: processes started ahead of time, waiting on stdin.

``claude -p --input-format=stream-json …`` boots and then waits for its first user
line, so a request finds a process that has already paid the boot. Each process
serves exactly ONE request (a stream-json process keeps one conversation: reusing
it would leak one client's conversation into the next) and is then replaced.

What must be fixed at start (model, system prompt, effort) is the pool key: a warm
process is kept ready for the POOL_SIZE most recently used keys; the first request
with a new key starts cold. Every process, idle or serving, counts against
MAX_CONCURRENT (see runtime/warmpool.py). Each process gets its own CLAUDE_CONFIG_DIR (with the
operator's credentials linked in), so parallel processes never write one shared
``~/.claude.json`` (concurrent writers corrupt it).

Starting a process in the background may fail for any reason (a full disk, too many open
files, a missing CLI): the failure is logged and shown in /health, and the start retried
with a growing delay; requests meanwhile start their own process or get a clear 503.
"""

from __future__ import annotations

import json
import shutil
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import anyio
from anyio.abc import TaskGroup
from loguru import logger

from copilot_cli_proxy.backends.base import BackendEvent, RunRecord
from copilot_cli_proxy.backends.claude_cli import (
    EFFORTS,
    SYSTEM_PROMPT_FILE,
    ClaudeCliBackend,
    build_claude_argv,
    describe,
    json_schema_arg,
    write_system_prompt,
)
from copilot_cli_proxy.backends.claude_guard import neutralise_prompt
from copilot_cli_proxy.backends.cli_backend import CliBackend, read_events
from copilot_cli_proxy.backends.prompt import build_cli_prompt
from copilot_cli_proxy.core.request import ChatRequest
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.runtime.process import CliRun
from copilot_cli_proxy.runtime.warmpool import WarmPool
from copilot_cli_proxy.runtime.workdir import make_request_dir
from copilot_cli_proxy.settings import Settings
from copilot_cli_proxy.tools.tool_use import offered_tools

# Files of the operator's claude config that a per-process config dir links to.
SHARED_CONFIG_FILES = (".credentials.json", "settings.json")
# Delays between attempts to start a warm process after a failure.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0


@dataclass(frozen=True, slots=True)
class WarmKey:
    model: str
    system: str
    effort: str | None
    # --json-schema is a process flag: a warm process serves one schema (or none).
    json_schema: str | None = None


def build_warm_argv(cli: str, key: WarmKey, system_file: Path, tools: tuple[str, ...]) -> list[str]:
    argv = build_claude_argv(
        cli,
        model=key.model,
        system_prompt_file=system_file,
        allowed_tools=tools,
        effort=key.effort,
        json_schema=key.json_schema,
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
    async def spawn(
        cls, cli: str, key: WarmKey, base: Path, tools: tuple[str, ...], env: dict[str, str]
    ) -> WarmClaude:
        root = make_request_dir(base)
        try:
            workdir = root / "work"
            system_file = workdir / SYSTEM_PROMPT_FILE
            env = dict(env)
            config = root / "config"
            try:
                workdir.mkdir()
                write_system_prompt(system_file, key.system)
                make_config_dir(config, operator_config_dir(env))
            except OSError as exc:
                raise ProxyError(
                    "cli_start_failed",
                    f"The server could not prepare a dir for the claude CLI: "
                    f"{exc.strerror or exc}.",
                ) from exc
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

    runner = "persistent"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._pool: WarmPool[WarmKey, WarmClaude] = WarmPool(
            settings.max_concurrent, settings.pool_size
        )
        self._wanted: OrderedDict[WarmKey, None] = OrderedDict()  # newest last
        self._retrying: set[WarmKey] = set()  # keys with a background start loop
        self._start_problem: str | None = None
        self._tg: TaskGroup | None = None

    async def start(self, tg: TaskGroup) -> None:
        await super().start(tg)
        self._tg = tg

    async def warm_up(self) -> None:
        await super().warm_up()
        if self.cli_path is not None:
            self._prepare(WarmKey(self.settings.model, "", None))

    async def stop(self) -> None:
        self._wanted.clear()
        await self._pool.close_all()

    def health_details(self) -> dict[str, object]:
        status = super().health_details()
        status["warm_processes"] = self._pool.idle
        status["cli_processes"] = self._pool.live
        return status

    def problems(self) -> list[str]:
        found = super().problems()
        return [*found, self._start_problem] if self._start_problem else found

    async def _spawn(self, key: WarmKey) -> WarmClaude:
        process = await WarmClaude.spawn(
            self.require_cli(),
            key,
            self.settings.temp_base,
            self.settings.allowed_tools,
            self.child_env(),
        )
        self._start_problem = None
        return process

    def _prepare(self, key: WarmKey) -> None:
        """Keep a process ready for ``key`` (one of the POOL_SIZE newest), in the background."""
        self._wanted[key] = None
        self._wanted.move_to_end(key)
        while len(self._wanted) > self.settings.pool_size:
            self._wanted.popitem(last=False)
        if self._tg is None or key in self._retrying or self._pool.covered(key):
            return
        self._retrying.add(key)
        try:
            self._tg.start_soon(self._keep_warm, key)
        except RuntimeError:  # the server is stopping
            self._retrying.discard(key)

    async def _keep_warm(self, key: WarmKey) -> None:
        """Start a process for ``key``; on any failure log it, wait, and try again."""
        delay = RETRY_FIRST_S
        try:
            while key in self._wanted and not self._pool.covered(key):
                try:
                    # No room now: the next request for this key prepares it again.
                    await self._pool.fill(key, self._spawn)
                    return
                except Exception as exc:  # whatever it is, this task must not end the server
                    self._start_problem = f"warm process start failed: {describe(exc)}"
                    logger.warning("{}; retrying in {:g} s", self._start_problem, delay)
                    await anyio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
        finally:
            self._retrying.discard(key)

    async def run_once(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        if offered_tools(request):
            # Its MCP endpoint is a process flag: a process of its own, started for it and
            # counted like a warm one.
            await self._pool.reserve(evict=True)
            try:
                # The one-shot run: ClaudeCliBackend.stream already wraps this call in
                # the request's MCP endpoint, so going through stream() again would recurse.
                async with aclosing(CliBackend.run_once(self, request, record)) as run:
                    async for event in run:
                        yield event
            finally:
                await self._pool.release()
            return
        self.require_cli()
        model = await self.catalog.resolve(request.model)
        prompt = build_cli_prompt(request.messages)
        effort = request.reasoning_effort if request.reasoning_effort in EFFORTS else None
        key = WarmKey(model, prompt.system, effort, json_schema_arg(request))
        try:
            process, warm = await self._pool.acquire(key, self._spawn)
        finally:
            # The next request with this key finds a warm process again; if this start
            # failed, the background one retries until it works (and /health says why).
            self._prepare(key)
        try:
            record.cli_run().workdir = str(process.workdir)
            record.cli_run().argv = process.argv
            logger.debug(
                "claude request served by a {} process (pid {})",
                "warm" if warm else "cold",
                process.run.pid,
            )
            line = user_message_line(neutralise_prompt(prompt.prompt))
            if not await process.run.write_stdin(line, close=True):
                logger.debug("the claude process closed its stdin before the prompt")
            parser = self.new_parser(request)
            async with aclosing(
                read_events(process.run, parser, record, process.workdir)
            ) as events:
                async for event in events:
                    yield event
        finally:
            await self._pool.close(process)
            self._prepare(key)  # there may be room now that was not there before
