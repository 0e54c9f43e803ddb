"""GitHub Copilot CLI, long-lived: ``copilot --headless --stdio`` speaking JSON-RPC.

One process (or POOL_SIZE of them) serves every request as its own session: the
request's temp dir is the session's working directory, its system text the
session's system message, its prompt a ``session.send`` (no argv, so no size
limit). Streamed ``assistant.message_delta`` events become chunks, the
``assistant.usage`` events the real token counts. A client that leaves or a
timeout aborts the session; the session is always deleted afterwards. Permission
requests are refused unless the operator allowed tools.

Why our own client and not ``github-copilot-sdk``: the SDK starts the CLI with a
plain ``Popen`` (no process group) and terminates only that pid, which orphans the
worker of the npm loader; it also brings pydantic and ~11k lines for the five
methods used here.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from loguru import logger

from copilot_cli_proxy.backends.base import BackendEvent, Finish, RunRecord
from copilot_cli_proxy.backends.copilot_cli import (
    DENY_ALL_TOOLS,
    CopilotCliBackend,
    CopilotOutputParser,
)
from copilot_cli_proxy.backends.prompt import build_cli_prompt
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.requests import ChatRequest
from copilot_cli_proxy.runtime.jsonrpc import (
    FrameDecoder,
    FramingError,
    JsonRpcError,
    JsonRpcPeer,
    PeerClosed,
)
from copilot_cli_proxy.runtime.process import CliRun
from copilot_cli_proxy.runtime.workdir import PREFIX, ensure_base
from copilot_cli_proxy.settings import Settings

PROTOCOL_VERSION = 3
CONNECT_TIMEOUT_S = 60.0
RPC_TIMEOUT_S = 30.0
CLEANUP_TIMEOUT_S = 5.0
REFUSAL = {"kind": "reject", "feedback": "Tools are disabled on this server."}
APPROVAL = {"kind": "approve-once"}


READY_KEYS = 4  # model/system/effort combinations that keep a session made ahead


@dataclass(frozen=True, slots=True)
class ReadyKey:
    model: str
    system: str
    effort: str | None


class _ProcessGone:
    """Sent to every open session when the CLI process dies."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


SessionItem = dict[str, Any] | _ProcessGone


@dataclass(slots=True)
class OpenSession:
    process: HeadlessCopilot
    session_id: str
    events: MemoryObjectReceiveStream[SessionItem]
    workdir: Path


def build_headless_argv(cli: str, allowed_tools: tuple[str, ...] = ()) -> list[str]:
    argv = [
        cli,
        "--headless",
        "--stdio",
        "--no-auto-update",
        "--log-level=error",
        "--no-color",
        "--no-ask-user",
        "--disable-builtin-mcps",
        "--disallow-temp-dir",
    ]
    if not allowed_tools:
        argv += DENY_ALL_TOOLS
    return argv


def session_create_params(
    *,
    model: str,
    workdir: Path,
    system: str,
    allowed_tools: tuple[str, ...],
    reasoning_effort: str | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": model,
        "streaming": True,
        "workingDirectory": str(workdir),
        # Only these tools exist for the model; [] means none (the CLI reports
        # "Disabled tools: bash, create, edit, …" for such a session).
        "availableTools": list(allowed_tools),
        "requestPermission": True,
        "requestUserInput": False,
        "requestElicitation": False,
        "requestExitPlanMode": False,
        "requestAutoModeSwitch": False,
        "envValueMode": "direct",
    }
    if system:
        params["systemMessage"] = {"mode": "append", "content": system}
    if reasoning_effort:
        params["reasoningEffort"] = reasoning_effort
    return params


class HeadlessCopilot:
    """One ``copilot --headless --stdio`` process and its sessions."""

    def __init__(self, run: CliRun, argv: list[str], allowed_tools: tuple[str, ...]) -> None:
        self.run = run
        self.argv = argv
        self._allowed_tools = allowed_tools
        self._sessions: dict[str, MemoryObjectSendStream[SessionItem]] = {}
        self._tg: TaskGroup | None = None
        self.gone: str | None = None
        self.version: str | None = None
        self._served = anyio.Event()
        self.peer = JsonRpcPeer(self._send, self._on_notification, self._on_request)

    @property
    def load(self) -> int:
        return len(self._sessions)

    @property
    def alive(self) -> bool:
        return self.gone is None and self.run.alive

    async def _send(self, data: bytes) -> None:
        stdin = self.run.process.stdin
        if stdin is None:
            raise PeerClosed("no stdin")
        try:
            await stdin.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            # the process is gone or going: callers handle PeerClosed, not pipe errors
            raise PeerClosed(f"the copilot CLI's stdin is closed ({type(exc).__name__})") from None

    async def serve(self, tg: TaskGroup) -> None:
        """Read frames until the process ends; then fail everything that waits on it."""
        self._tg = tg
        decoder = FrameDecoder()
        reason = "the copilot CLI process exited"
        try:
            async for chunk in self.run.chunks():
                for message in decoder.feed(chunk):
                    reply = self.peer.dispatch(message)
                    if reply is not None:
                        tg.start_soon(_quietly, reply)
        except FramingError as exc:
            reason = f"the copilot CLI sent a broken frame ({exc})"
        finally:
            code = self.run.process.returncode
            self.gone = reason + (f" (exit code {code})" if code is not None else "")
            self.peer.close(PeerClosed(self.gone))
            for stream in list(self._sessions.values()):
                _deliver(stream, _ProcessGone(self.gone))
            with anyio.CancelScope(shield=True):
                await self.run.aclose()
            self._served.set()

    async def stop(self, grace: float = 3.0) -> None:
        """End the process: stdin EOF first (it exits by itself), the group kill after."""
        with anyio.CancelScope(shield=True):
            await self.run.write_stdin(b"", close=True)
            with anyio.move_on_after(grace):
                await self._served.wait()
            await self.run.aclose()

    def _on_notification(self, method: str, params: Any) -> None:
        if method != "session.event" or not isinstance(params, dict):
            return
        event = params.get("event")
        stream = self._sessions.get(str(params.get("sessionId")))
        if stream is None or not isinstance(event, dict):
            return
        if event.get("type") == "permission.requested":
            self._answer_permission(str(params.get("sessionId")), event)
            return
        _deliver(stream, event)

    def _answer_permission(self, session_id: str, event: dict[str, Any]) -> None:
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        request_id = data.get("requestId") if isinstance(data, dict) else None
        if not request_id or self._tg is None:
            return
        decision = APPROVAL if self._allowed_tools else REFUSAL
        logger.info(
            "copilot session {} asked for a permission: {}",
            session_id,
            "approved (ALLOWED_TOOLS)" if self._allowed_tools else "refused",
        )
        self._tg.start_soon(
            _quietly,
            self.peer.request(
                "session.permissions.handlePendingPermissionRequest",
                {"sessionId": session_id, "requestId": request_id, "result": decision},
            ),
        )

    async def _on_request(self, method: str, params: Any) -> Any:
        # userInput/exitPlanMode/autoModeSwitch/...: nobody is there to answer.
        raise JsonRpcError(-32601, f"{method} is not available through this server")

    async def connect(self) -> None:
        with anyio.fail_after(CONNECT_TIMEOUT_S):
            try:
                result = await self.peer.request(
                    "connect", {"supportedTaskKinds": ["agent", "client", "shell"]}
                )
            except JsonRpcError as exc:
                if exc.code != -32601:
                    raise
                result = await self.peer.request("ping", {"message": "copilot-cli-proxy"})
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        if version != PROTOCOL_VERSION:
            raise ProxyError(
                "cli_start_failed",
                f"The copilot CLI speaks protocol {version}; this server speaks "
                f"{PROTOCOL_VERSION}. Install the CLI version in package.json.",
            )
        self.version = str(result.get("version")) if isinstance(result, dict) else None

    async def open_session(
        self, params: dict[str, Any]
    ) -> tuple[str, MemoryObjectReceiveStream[SessionItem]]:
        with anyio.fail_after(RPC_TIMEOUT_S):
            result = await self.peer.request("session.create", params)
        session_id = str(result["sessionId"])
        send, receive = anyio.create_memory_object_stream[SessionItem](math.inf)
        self._sessions[session_id] = send
        return session_id, receive

    async def close_session(self, session_id: str, *, abort: bool) -> None:
        """Abort (when the turn is unfinished) and delete; shielded, bounded in time."""
        stream = self._sessions.pop(session_id, None)
        if stream is not None:
            stream.close()
        if not self.alive:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT_S):
            try:
                if abort:
                    await self.peer.request("session.abort", {"sessionId": session_id})
                await self.peer.request("session.delete", {"sessionId": session_id})
            except (JsonRpcError, PeerClosed) as exc:
                logger.warning("could not close copilot session {}: {}", session_id, exc)


def _deliver(stream: MemoryObjectSendStream[SessionItem], item: SessionItem) -> None:
    # The request may have stopped listening (answer done, client gone) while the
    # session is still being closed: a late event for it is dropped, never allowed
    # to break the reader that serves every other session.
    try:
        stream.send_nowait(item)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except (JsonRpcError, PeerClosed, anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


class CopilotHeadlessBackend(CopilotCliBackend):
    """RUNNER=persistent for copilot."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._processes: list[HeadlessCopilot] = []
        self._spawn_lock = anyio.Lock()
        self._tg: TaskGroup | None = None
        self._ready: OrderedDict[ReadyKey, OpenSession] = OrderedDict()
        self._preparing: set[ReadyKey] = set()
        self._pending_closes: list[tuple[OpenSession, bool]] = []
        self._stopping = False

    async def start(self, tg: TaskGroup) -> None:
        await super().start(tg)
        self._tg = tg

    async def warm_up(self) -> None:
        await super().warm_up()
        if self.cli_path is None:
            return
        try:
            await self._process()
        except ProxyError as exc:
            logger.warning("could not start the long-lived copilot process: {}", exc.message)
            return
        self._prepare(ReadyKey(self.settings.model, "", None))

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

    def health(self) -> dict[str, Any]:
        status = super().health()
        status["runner"] = "persistent"
        status["processes_alive"] = sum(1 for p in self._processes if p.alive)
        status["sessions_ready"] = len(self._ready)
        return status

    def check_request(self, request: ChatRequest) -> None:
        return None  # the prompt travels over RPC: no argument-size limit

    async def _process(self) -> HeadlessCopilot:
        """The least loaded live process; a fresh one where a slot is free or dead."""
        async with self._spawn_lock:
            self._processes = [p for p in self._processes if p.alive]
            if len(self._processes) >= self.settings.pool_size:
                return min(self._processes, key=lambda p: p.load)
            return await self._spawn()

    async def _spawn(self) -> HeadlessCopilot:
        if self._tg is None:
            raise ProxyError("cli_unavailable", "The server is not started yet.")
        cli = self.require_cli()
        argv = build_headless_argv(cli, self.settings.allowed_tools)
        base = self.settings.temp_base
        ensure_base(base)
        run = await CliRun.start(argv, cwd=base, env=self.child_env(), keep_stdin=True)
        process = HeadlessCopilot(run, argv, self.settings.allowed_tools)
        self._tg.start_soon(process.serve, self._tg)
        try:
            await process.connect()
        except (TimeoutError, PeerClosed, JsonRpcError) as exc:
            detail = run.stderr_tail().strip().splitlines()
            await run.aclose()
            raise ProxyError(
                "cli_start_failed",
                f"The copilot CLI did not start its JSON-RPC server: {exc}"
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
        if self._tg is None or key in self._ready or key in self._preparing:
            return
        self._preparing.add(key)
        self._tg.start_soon(self._make_ready, key)

    async def _make_ready(self, key: ReadyKey) -> None:
        try:
            session = await self._open(key)
        except ProxyError as exc:
            logger.debug("no session made ahead: {}", exc.message)
            return
        finally:
            self._preparing.discard(key)
        self._ready[key] = session
        self._ready.move_to_end(key)
        while len(self._ready) > READY_KEYS:
            _, oldest = self._ready.popitem(last=False)
            await self._close(oldest, abort=False)

    async def _open(self, key: ReadyKey) -> OpenSession:
        ensure_base(self.settings.temp_base)
        workdir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=self.settings.temp_base))
        try:
            process = await self._process()
            params = session_create_params(
                model=key.model,
                workdir=workdir,
                system=key.system,
                allowed_tools=self.settings.allowed_tools,
                reasoning_effort=key.effort,
            )
            session_id, events = await process.open_session(params)
        except (PeerClosed, JsonRpcError, TimeoutError) as exc:
            await _remove_dir(workdir)
            raise ProxyError("cli_unavailable", f"The copilot CLI is unavailable: {exc}") from None
        except BaseException:
            await _remove_dir(workdir)
            raise
        return OpenSession(process, session_id, events, workdir)

    async def _take(self, key: ReadyKey) -> OpenSession:
        ready = self._ready.pop(key, None)
        if ready is not None and ready.process.alive:
            return ready
        if ready is not None:
            await self._close(ready, abort=False)
        return await self._open(key)

    async def _close(self, session: OpenSession, *, abort: bool) -> None:
        """Abort (an unfinished turn), delete the session, remove its dir. Shielded."""
        with anyio.CancelScope(shield=True):
            session.events.close()
            try:
                await session.process.close_session(session.session_id, abort=abort)
            finally:
                await _remove_dir(session.workdir)

    def _close_later(self, session: OpenSession, *, abort: bool) -> None:
        """Off the answer's path; inline when the server is stopping."""
        if self._tg is not None and not self._stopping:
            self._tg.start_soon(partial(self._close, session, abort=abort))
        else:
            self._pending_closes.append((session, abort))

    async def stream(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        self.require_cli()
        model = await self.catalog.resolve(request.model)
        prompt = build_cli_prompt(request.messages)
        key = ReadyKey(model, prompt.system, request.reasoning_effort)
        session = await self._take(key)
        self._prepare(key)  # the next request with this key finds its session made
        record.workdir = str(session.workdir)
        record.argv = session.process.argv
        finished = False
        try:
            with anyio.fail_after(RPC_TIMEOUT_S):
                await session.process.peer.request(
                    "session.send", {"sessionId": session.session_id, "prompt": prompt.prompt}
                )
            reader = CopilotOutputParser()
            async for item in session.events:
                if isinstance(item, _ProcessGone):
                    raise ProxyError(
                        "cli_unavailable",
                        f"The copilot CLI stopped while answering: {item.reason}. "
                        "The next request starts a fresh one.",
                    )
                for event in reader.feed(item):
                    yield event
                if reader.idle:
                    break
            if not reader.idle:
                raise ProxyError("cli_failed", "The copilot session ended without an answer.")
            finished = True
            yield reader.session_usage()
            yield Finish("stop")
        except (PeerClosed, JsonRpcError) as exc:
            raise ProxyError("cli_unavailable", f"The copilot CLI is unavailable: {exc}") from None
        finally:
            self._close_later(session, abort=not finished)


async def _remove_dir(path: Path) -> None:
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(shutil.rmtree, path, True)
