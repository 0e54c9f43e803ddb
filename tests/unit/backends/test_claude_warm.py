"""The claude warm pool over the fake claude CLI: the process cap, and background starts
that fail (regression tests for issue 8, items 5 and 14c)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from copilot_cli_proxy.backends import claude_warm
from copilot_cli_proxy.backends.base import RunRecord, TextDelta
from copilot_cli_proxy.backends.claude_warm import ClaudeWarmBackend, WarmClaude, WarmKey
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.requests import ChatRequest, Message
from copilot_cli_proxy.settings import Settings
from tests.fakes_env import FAKE_CLI_ENV

FAKE_CLAUDE = str(Path(__file__).resolve().parents[2] / "fakes" / "claude")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


class World:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.base = tmp_path / "base"
        self.pids = tmp_path / "pids"
        self.pids.mkdir()
        monkeypatch.setenv("FAKE_CLI_PID_DIR", str(self.pids))
        monkeypatch.delenv("FAKE_CLI_LOGGED_OUT", raising=False)
        monkeypatch.setattr(claude_warm, "RETRY_FIRST_S", 0.05)
        monkeypatch.setattr(claude_warm, "RETRY_MAX_S", 0.2)
        self.open_now = 0
        self.most_open = 0
        original = WarmClaude.spawn
        original_close = WarmClaude.aclose
        closed: list[WarmClaude] = []  # the objects themselves: an id() can be reused

        async def counted_spawn(*args: Any) -> WarmClaude:
            if self.spawn_error is not None:
                raise self.spawn_error
            process = await original(*args)
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            return process

        async def counted_close(process: WarmClaude) -> None:
            if not any(seen is process for seen in closed):
                closed.append(process)
                self.open_now -= 1
            await original_close(process)

        self.spawn_error: BaseException | None = None
        monkeypatch.setattr(WarmClaude, "spawn", staticmethod(counted_spawn))
        monkeypatch.setattr(WarmClaude, "aclose", counted_close)

    def settings(self, **extra: Any) -> Settings:
        return Settings(
            service="claude",
            runner="persistent",
            claude_cli_path=FAKE_CLAUDE,
            temp_dir_base=str(self.base),
            cli_env=FAKE_CLI_ENV,
            **extra,
        )

    def live_pids(self) -> list[int]:
        return [int(p.name) for p in self.pids.iterdir() if pid_alive(int(p.name))]

    def request_dirs(self) -> list[Path]:
        return sorted(self.base.glob("req-*")) if self.base.is_dir() else []


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return World(tmp_path, monkeypatch)


@asynccontextmanager
async def running(backend: ClaudeWarmBackend) -> AsyncIterator[ClaudeWarmBackend]:
    async with anyio.create_task_group() as tg:
        await backend.start(tg)
        await backend.warm_up()
        try:
            yield backend
        finally:
            await backend.stop()
            tg.cancel_scope.cancel()


async def ask(backend: ClaudeWarmBackend, system: str, text: str = "FAKE_REPLY=pong") -> str:
    request = ChatRequest(
        model="sonnet",
        messages=(Message(role="system", content=system), Message(role="user", content=text)),
    )
    pieces: list[str] = []
    async with aclosing(backend.stream(request, RunRecord())) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                pieces.append(event.text)
    return "".join(pieces)


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await anyio.sleep(0.02)


async def test_unique_system_prompts_never_exceed_max_concurrent(world: World) -> None:
    backend = ClaudeWarmBackend(world.settings(max_concurrent=2, pool_size=1))
    limiter = anyio.Semaphore(2)  # the server's request limiter, with the same cap
    answers: list[str] = []

    async def one(i: int) -> None:
        async with limiter:
            answers.append(await ask(backend, f"a system prompt of its own, {i}"))

    async with running(backend):
        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(one, i)
        assert backend.health().as_json()["cli_processes"] <= 2
    assert answers == ["pong"] * 8
    assert world.most_open <= 2, f"{world.most_open} CLI processes at once with a cap of 2"
    await until(lambda: not world.live_pids() and not world.request_dirs())


async def test_a_background_start_that_raises_anything_is_retried(world: World) -> None:
    world.spawn_error = RuntimeError("boom")
    backend = ClaudeWarmBackend(world.settings())
    async with running(backend):
        await until(lambda: any("RuntimeError: boom" in p for p in backend.problems()))
        assert backend.health().as_json()["warm_processes"] == 0
        world.spawn_error = None
        await until(lambda: backend.health().as_json()["warm_processes"] == 1)
        assert backend.problems() == []
        assert await ask(backend, "") == "pong"
    await until(lambda: not world.live_pids() and not world.request_dirs())


async def test_a_broken_temp_dir_gives_503_then_heals(world: World) -> None:
    world.base.write_text("a file where the temp dir should be: every start fails")
    backend = ClaudeWarmBackend(world.settings())
    async with running(backend):
        await until(lambda: any("warm process start failed" in p for p in backend.problems()))
        with pytest.raises(ProxyError) as caught:
            await ask(backend, "")
        assert caught.value.status == 503 and "TEMP_DIR_BASE" in caught.value.message
        assert not world.live_pids(), "a failed start leaves no process"

        with pytest.raises(ProxyError):
            await ask(backend, "a key whose first start fails")

        world.base.unlink()
        # the failed request's key is the one kept warm now, and its start is retried
        failed_key = WarmKey("sonnet", "a key whose first start fails", None)
        await until(lambda: backend._pool.has(failed_key))
        assert not any("warm process" in p for p in backend.problems())
        assert await ask(backend, "a key whose first start fails") == "pong"
        assert await ask(backend, "") == "pong"
        assert await ask(backend, "another system prompt") == "pong"
        await until(lambda: len(world.live_pids()) == backend.health().as_json()["warm_processes"])
        assert len(world.request_dirs()) == len(world.live_pids())
    await until(lambda: not world.live_pids() and not world.request_dirs())


async def test_a_dead_warm_process_is_replaced_by_a_cold_one(world: World) -> None:
    backend = ClaudeWarmBackend(world.settings())
    async with running(backend):
        await until(lambda: backend.health().as_json()["warm_processes"] == 1)
        idle = backend._pool.take(WarmKey("sonnet", "", None))
        assert idle is not None
        await idle.aclose()
        await backend._pool.put(WarmKey("sonnet", "", None), idle)
        assert await ask(backend, "") == "pong"
    await until(lambda: not world.live_pids() and not world.request_dirs())
