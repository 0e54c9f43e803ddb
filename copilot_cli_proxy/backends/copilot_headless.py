"""GitHub Copilot CLI, long-lived: ``copilot --headless --stdio`` speaking JSON-RPC.

One process (or POOL_SIZE of them) serves every request as its own session: the
request's temp dir is the session's working directory (its own git root), its system
text the session's system message (no instruction file is read), its prompt a
``session.send`` (no argv, so no size limit). Streamed ``assistant.message_delta``
events become chunks, the ``assistant.usage`` events the real token counts. A client
that leaves or a timeout aborts the session; the session is always deleted afterwards,
and the process's private copilot home (no conversation store) goes with the process.
Permission requests are refused unless the operator allowed tools. BYOK
(``COPILOT_PROVIDER_*``) is passed to every session, as the headless CLI ignores it.
A request with the client's tools gets a session of its own, made with them as its
custom tools; the answer ends at the model's calls and that turn is aborted
(copilot_tools, copilot_session).

A supervisor, off the request path, pings every process and replaces one that does
not answer, asks the CLI for its login state, and keeps a session made ahead; it
survives any failure (logged, retried after a backoff, shown in health()).

Why our own client and not ``github-copilot-sdk``: the SDK starts the CLI with a
plain ``Popen`` (no process group) and terminates only that pid, which orphans the
worker of the npm loader; it also brings pydantic and ~11k lines for the five
methods used here.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import aclosing
from functools import partial
from pathlib import Path

import anyio
from anyio.abc import TaskGroup
from loguru import logger

from copilot_cli_proxy.backends.base import BackendEvent, Finish, RunRecord
from copilot_cli_proxy.backends.cli_backend import CliBackend
from copilot_cli_proxy.backends.copilot_auth import byok_enabled, login_problem
from copilot_cli_proxy.backends.copilot_cli import CopilotCliBackend
from copilot_cli_proxy.backends.copilot_isolation import (
    isolated_env,
    make_private_home,
    operator_copilot_home,
)
from copilot_cli_proxy.backends.copilot_output import CopilotOutputParser
from copilot_cli_proxy.backends.copilot_rpc import (
    APPROVAL,
    REFUSAL,
    RPC_TIMEOUT_S,
    HeadlessCopilot,
    build_headless_argv,
    remove_dir,
    session_create_params,
)
from copilot_cli_proxy.backends.copilot_session import (
    OpenSession,
    ReadyKey,
    open_session,
    read_turn,
    send_prompt,
)
from copilot_cli_proxy.backends.copilot_tools import CopilotToolParser
from copilot_cli_proxy.backends.structured import structured_answer
from copilot_cli_proxy.core.request import ChatRequest, ToolSpec
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.runtime.jsonrpc import JsonRpcError, PeerClosed
from copilot_cli_proxy.runtime.process import CliRun
from copilot_cli_proxy.runtime.workdir import PREFIX, ensure_base
from copilot_cli_proxy.settings import Settings
from copilot_cli_proxy.tools.request_tools import with_tool_instruction
from copilot_cli_proxy.tools.tool_use import offered_tools

__all__ = [
    "APPROVAL",
    "REFUSAL",
    "CopilotHeadlessBackend",
    "HeadlessCopilot",
    "OpenSession",
    "ReadyKey",
    "build_headless_argv",
    "session_create_params",
]

READY_KEYS = 4  # model/system/effort combinations that keep a session made ahead
HOME_PREFIX = PREFIX + "copilot-home-"  # swept with the request dirs after a crash
CHECK_INTERVAL_S = 5.0  # between health checks of the long-lived processes
PING_TIMEOUT_S = 10.0  # a process that does not answer a ping within this is replaced
LOGIN_CHECK_INTERVAL_S = 300.0
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # after consecutive background failures


class CopilotHeadlessBackend(CopilotCliBackend):
    """RUNNER=persistent for copilot."""

    runner = "persistent"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._processes: list[HeadlessCopilot] = []
        self._spawn_lock = anyio.Lock()
        self._tg: TaskGroup | None = None
        self._ready: OrderedDict[ReadyKey, OpenSession] = OrderedDict()
        self._preparing: set[ReadyKey] = set()
        self._pending_closes: list[tuple[OpenSession, bool]] = []
        self._stopping = False
        self.processes_replaced = 0

    async def start(self, tg: TaskGroup) -> None:
        await super().start(tg)
        self._tg = tg

    async def stop(self) -> None:
        self._stopping = True
        while self._ready:
            _, session = self._ready.popitem()
            await self._close(session, abort=False)
        while self._pending_closes:
            session, abort = self._pending_closes.pop()
            await self._close(session, abort=abort)
        for process in self._processes:
            await process.stop()
        self._processes.clear()

    def health_details(self) -> dict[str, object]:
        status = super().health_details()
        status["processes_alive"] = sum(1 for p in self._processes if p.alive)
        status["processes_replaced"] = self.processes_replaced
        status["sessions_ready"] = len(self._ready)
        return status

    def check_request(self, request: ChatRequest) -> None:
        # The prompt travels over RPC: no argument-size limit.
        CliBackend.check_request(self, request)

    # -- supervision ----------------------------------------------------------------------

    async def supervise(self) -> None:
        """Until the server stops: a live process that answers, a known login state, a
        session made ahead. Any failure is logged and retried after a backoff."""
        failures = 0
        login_checked_at = -LOGIN_CHECK_INTERVAL_S
        while not self._stopping:
            try:
                if self.cli_path is not None:
                    await self._check_processes()
                    now = anyio.current_time()
                    if now - login_checked_at >= LOGIN_CHECK_INTERVAL_S:
                        await self._check_login()
                        login_checked_at = now
                    await self._make_ready(ReadyKey(self.settings.model, "", None))
                self.background_error = None
                failures = 0
                delay = CHECK_INTERVAL_S
            except Exception as exc:
                self._background_failed("keeping a copilot process ready", exc)
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                failures += 1
            await anyio.sleep(delay)

    async def _check_processes(self) -> None:
        """Ping every process; replace one that does not answer; start one if none runs."""
        for process in list(self._processes):
            if process.alive and not await process.ping(PING_TIMEOUT_S):
                await self._replace(process)
        await self._process()

    async def _replace(self, process: HeadlessCopilot) -> None:
        reason = (
            f"the copilot CLI (pid {process.run.pid}) stopped answering: no reply to a "
            f"ping within {PING_TIMEOUT_S:g} s; it was replaced"
        )
        logger.error("{}", reason)
        self.processes_replaced += 1
        async with self._spawn_lock:
            if process in self._processes:
                self._processes.remove(process)
        for key, session in list(self._ready.items()):
            if session.process is process:
                del self._ready[key]
                await self._close(session, abort=False)
        await process.give_up(reason)

    async def _check_login(self) -> None:
        if byok_enabled(os.environ):
            self.note_login(True)
            return
        process = await self._process()
        with anyio.fail_after(RPC_TIMEOUT_S):
            status = await process.peer.request("auth.getStatus", {})
        if isinstance(status, dict) and isinstance(status.get("isAuthenticated"), bool):
            self.note_login(status["isAuthenticated"])

    # -- processes ------------------------------------------------------------------------

    async def _process(self) -> HeadlessCopilot:
        """The least loaded live process; a fresh one where a slot is free or dead."""
        async with self._spawn_lock:
            self._processes = [p for p in self._processes if p.alive]
            if len(self._processes) >= self.settings.pool_size:
                return min(self._processes, key=lambda p: p.load)
            return await self._spawn()

    async def _spawn(self) -> HeadlessCopilot:
        if self._tg is None or self._stopping:
            raise ProxyError("cli_unavailable", "The server is not running.")
        cli = self.require_cli()
        argv = build_headless_argv(cli, self.settings.allowed_tools)
        base = self.settings.temp_base
        ensure_base(base)
        home = Path(tempfile.mkdtemp(prefix=HOME_PREFIX, dir=base))
        try:
            make_private_home(home, operator_copilot_home())
            run = await CliRun.start(
                argv, cwd=base, env=isolated_env(home, extra_names=self.extra_env), keep_stdin=True
            )
        except BaseException:
            await remove_dir(home)
            raise
        process = HeadlessCopilot(run, argv, self.settings.allowed_tools, home=home)
        self._tg.start_soon(process.serve, self._tg)  # removes the home when the process ends
        try:
            await process.connect()
        except (TimeoutError, PeerClosed, JsonRpcError) as exc:
            detail = run.stderr_tail().strip().splitlines()
            await run.aclose()
            raise ProxyError(
                "cli_start_failed",
                f"The copilot CLI did not start its JSON-RPC server: {exc or 'no answer'}"
                + (f" ({detail[-1]})" if detail else ""),
            ) from None
        logger.info("long-lived copilot process {} ready (pid {})", process.version, run.pid)
        self._processes.append(process)
        return process

    # -- sessions made ahead ------------------------------------------------------------
    # session.create costs the real CLI ~75 ms; a session made while the previous answer
    # streams takes that off the next request's path. It is keyed by what session.create
    # fixes (model, system text, effort) and owns its request dir from the start.

    def _prepare(self, key: ReadyKey) -> None:
        if self._tg is None or self._stopping:
            return
        try:
            self._tg.start_soon(self._make_ready_quietly, key)
        except RuntimeError:
            pass  # the server is stopping: nothing to prepare for

    async def _make_ready_quietly(self, key: ReadyKey) -> None:
        try:
            await self._make_ready(key)
        except Exception as exc:  # a background task must never end the task group
            self._background_failed("making a copilot session ahead", exc)

    async def _make_ready(self, key: ReadyKey) -> None:
        if key in self._ready or key in self._preparing:
            return
        self._preparing.add(key)
        try:
            session = await self._open(key)
        finally:
            self._preparing.discard(key)
        if self._stopping:
            await self._close(session, abort=False)
            return
        self._ready[key] = session
        self._ready.move_to_end(key)
        while len(self._ready) > READY_KEYS:
            _, oldest = self._ready.popitem(last=False)
            await self._close(oldest, abort=False)

    async def _open(self, key: ReadyKey, tools: tuple[ToolSpec, ...] = ()) -> OpenSession:
        return await open_session(
            key,
            temp_base=self.settings.temp_base,
            allowed_tools=self.settings.allowed_tools,
            process=self._process,
            tools=tools,
        )

    async def _take(self, key: ReadyKey) -> OpenSession:
        ready = self._ready.pop(key, None)
        if ready is not None and ready.process.alive:
            return ready
        if ready is not None:
            await self._close(ready, abort=False)
        return await self._open(key)

    async def _close(self, session: OpenSession, *, abort: bool) -> None:
        """Abort (an unfinished turn), delete the session, remove its dir. Shielded.

        When the server stops, the CLI is not asked: its reader is already cancelled (no
        answer could arrive), and the process and its private home go anyway.
        """
        with anyio.CancelScope(shield=True):
            session.events.close()
            try:
                if self._stopping:
                    session.process.forget_session(session.session_id)
                else:
                    await session.process.close_session(session.session_id, abort=abort)
            finally:
                await remove_dir(session.workdir)

    def _close_later(self, session: OpenSession, *, abort: bool) -> None:
        """Off the answer's path; inline when the server is stopping."""
        if self._tg is not None and not self._stopping:
            try:
                self._tg.start_soon(partial(self._close_quietly, session, abort=abort))
                return
            except RuntimeError:
                pass  # the task group is closing: stop() closes it
        self._pending_closes.append((session, abort))

    async def _close_quietly(self, session: OpenSession, *, abort: bool) -> None:
        try:
            await self._close(session, abort=abort)
        except Exception as exc:
            logger.opt(exception=exc).warning("could not close copilot session")

    # -- one request --------------------------------------------------------------------

    async def stream(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        self.require_cli()
        model = await self.catalog.resolve(request.model)
        tools = offered_tools(request)
        if tools:
            request = with_tool_instruction(request)
        prompt = self.cli_prompt(request)
        key = ReadyKey(model, prompt.system, request.reasoning_effort)
        if tools:
            # The client's tools are fixed at session.create: a session of its own.
            session = await self._open(key, tools)
        else:
            session = await self._take(key)
            self._prepare(key)  # the next request with this key finds its session made
        record.cli_run().workdir = str(session.workdir)
        record.cli_run().argv = session.process.argv
        finished = False
        fmt = request.response_format
        try:
            if fmt is None:
                async with aclosing(self._turn(session, prompt.prompt, tools)) as turn:
                    async for event in turn:
                        # A turn that ended with tool calls is left unfinished: aborted.
                        finished = finished or event == Finish("stop")
                        yield event
            else:
                # The repair turn is a second send in the same session: it has the
                # conversation, so the note is all it needs. Not after tool calls: that
                # turn is still open.
                def attempt(note: str | None, _failed: str) -> AsyncGenerator[BackendEvent, None]:
                    text = prompt.prompt if note is None else note
                    return self._turn(session, text, tools)

                answer = structured_answer(fmt, attempt, repair=not tools)
                async with aclosing(answer) as events:
                    async for event in events:
                        finished = finished or event == Finish("stop")
                        yield event
        except (PeerClosed, JsonRpcError) as exc:
            raise ProxyError("cli_unavailable", f"The copilot CLI is unavailable: {exc}") from None
        finally:
            self._close_later(session, abort=not finished)

    async def _turn(
        self, session: OpenSession, text: str, tools: tuple[ToolSpec, ...]
    ) -> AsyncGenerator[BackendEvent, None]:
        """One ``session.send``, read until the session is idle or the model called tools."""
        await send_prompt(session, text)
        login_error = login_problem(os.environ)
        reader = (
            CopilotToolParser(login_error, tuple(t.name for t in tools))
            if tools
            else CopilotOutputParser(login_error)
        )
        async with aclosing(read_turn(session, reader, self.note_login)) as events:
            async for event in events:
                yield event
