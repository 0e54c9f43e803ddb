"""One ``copilot --headless --stdio`` process: its JSON-RPC peer, its sessions, its end.

The backend (``copilot_headless.py``) decides when to start, use, check and replace
such processes; this module knows how to talk to one. Each process runs with a
private copilot home (see ``copilot_isolation.py``), removed when the process ends.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from loguru import logger

from copilot_cli_proxy.backends.copilot_cli import DENY_ALL_TOOLS
from copilot_cli_proxy.backends.copilot_tools import (
    CUSTOM_TOOL_PERMISSION,
    NOT_RUN,
    custom_tools,
)
from copilot_cli_proxy.core.request import ToolSpec
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.runtime.jsonrpc import (
    FrameDecoder,
    FramingError,
    JsonRpcError,
    JsonRpcPeer,
    PeerClosed,
)
from copilot_cli_proxy.runtime.process import CliRun

PROTOCOL_VERSION = 3
CONNECT_TIMEOUT_S = 60.0
RPC_TIMEOUT_S = 30.0
CLEANUP_TIMEOUT_S = 5.0
REFUSAL = {"kind": "reject", "feedback": "Tools are disabled on this server."}
APPROVAL = {"kind": "approve-once"}


class ProcessGone:
    """Sent to every open session when the CLI process dies."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


SessionItem = dict[str, Any] | ProcessGone


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
        argv += DENY_ALL_TOOLS  # a second layer: sessions are made with no tools at all
    return argv


def session_create_params(
    *,
    model: str,
    workdir: Path,
    system: str,
    allowed_tools: tuple[str, ...],
    reasoning_effort: str | None,
    provider: dict[str, Any] | None = None,
    tools: tuple[ToolSpec, ...] = (),
) -> dict[str, Any]:
    """``tools``: the client's, declared as custom tools (copilot_tools)."""
    params: dict[str, Any] = {
        "model": model,
        "streaming": True,
        "workingDirectory": str(workdir),
        # Only these tools exist for the model; [] means none (the CLI reports
        # "Disabled tools: bash, create, edit, …" for such a session).
        "availableTools": [*allowed_tools, *(tool.name for tool in tools)],
        # No AGENTS.md, CLAUDE.md, copilot-instructions.md…: the system message below
        # is the only instruction text (the one-shot `--no-custom-instructions` does
        # nothing for a headless session; this does).
        "skipCustomInstructions": True,
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
    if tools:
        params["tools"] = custom_tools(tools)
    if provider:
        # BYOK: the headless CLI ignores COPILOT_PROVIDER_*; each session names its provider.
        params["provider"] = provider
    return params


class HeadlessCopilot:
    """One ``copilot --headless --stdio`` process and its sessions."""

    def __init__(
        self,
        run: CliRun,
        argv: list[str],
        allowed_tools: tuple[str, ...],
        home: Path | None = None,
    ) -> None:
        self.run = run
        self.argv = argv
        self.home = home
        self._allowed_tools = allowed_tools
        self._sessions: dict[str, MemoryObjectSendStream[SessionItem]] = {}
        self._tg: TaskGroup | None = None
        self.gone: str | None = None
        # Why the server gave up on this process while it still ran (it stopped answering).
        self.wedged: str | None = None
        self.version: str | None = None
        self._served = anyio.Event()
        self.peer = JsonRpcPeer(self._send, self._on_notification, self._on_request)

    @property
    def load(self) -> int:
        return len(self._sessions)

    @property
    def alive(self) -> bool:
        return self.gone is None and self.wedged is None and self.run.alive

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
        except Exception as exc:  # the reader must end cleanly whatever broke it
            logger.opt(exception=exc).error("reading the copilot CLI's output failed")
            reason = f"reading the copilot CLI's output failed ({type(exc).__name__})"
        finally:
            code = self.run.process.returncode
            if self.wedged is not None:
                reason = self.wedged
            self.gone = reason + (f" (exit code {code})" if code is not None else "")
            self.peer.close(PeerClosed(self.gone))
            for stream in list(self._sessions.values()):
                deliver(stream, ProcessGone(self.gone))
            with anyio.CancelScope(shield=True):
                await self.run.aclose()
                if self.home is not None:
                    await remove_dir(self.home)
            self._served.set()

    async def stop(self, grace: float = 3.0) -> None:
        """End the process: stdin EOF first (it exits by itself), the group kill after."""
        with anyio.CancelScope(shield=True):
            await self.run.write_stdin(b"", close=True)
            with anyio.move_on_after(grace):
                await self._served.wait()
            await self.run.aclose()

    async def give_up(self, reason: str) -> None:
        """The process stopped answering: kill it; its sessions fail with ``reason``."""
        self.wedged = reason
        with anyio.CancelScope(shield=True):
            await self.run.aclose()

    async def ping(self, timeout_s: float) -> bool:
        """Whether the process answers a ping within ``timeout_s``."""
        with anyio.move_on_after(timeout_s):
            try:
                await self.peer.request("ping", {"message": "health"})
            except JsonRpcError:
                pass  # an error reply is an answer: the process is alive
            except PeerClosed:
                return False
            return True
        return False

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
        if event.get("type") == "external_tool.requested":
            self._refuse_tool_call(str(params.get("sessionId")), event)
        deliver(stream, event)

    def _answer_permission(self, session_id: str, event: dict[str, Any]) -> None:
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        request_id = data.get("requestId") if isinstance(data, dict) else None
        if not request_id or self._tg is None:
            return
        asked = data.get("permissionRequest") if isinstance(data, dict) else None
        if isinstance(asked, dict) and asked.get("kind") == CUSTOM_TOOL_PERMISSION:
            # A client's tool: never run here, whatever the operator allowed. Left
            # unanswered: the answer has ended with the call and the turn is being
            # aborted; a refusal would make the CLI ask the model again for nothing.
            logger.debug("copilot session {} wants a client's tool run: left", session_id)
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

    def _refuse_tool_call(self, session_id: str, event: dict[str, Any]) -> None:
        """A client's tool the CLI wants run (only after an approved permission, which
        is never given): it fails with a refusal, and the turn is aborted anyway."""
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        request_id = data.get("requestId") if isinstance(data, dict) else None
        if not request_id or self._tg is None:
            return
        self._tg.start_soon(
            _quietly,
            self.peer.request(
                "session.tools.handlePendingToolCall",
                {"sessionId": session_id, "requestId": request_id, "error": NOT_RUN},
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

    def forget_session(self, session_id: str) -> None:
        """Stop delivering a session's events, without asking the CLI for anything."""
        stream = self._sessions.pop(session_id, None)
        if stream is not None:
            stream.close()

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
            except PeerClosed:
                pass  # the process ended: its sessions (and its private home) went with it
            except JsonRpcError as exc:
                logger.warning("could not close copilot session {}: {}", session_id, exc)


def deliver(stream: MemoryObjectSendStream[SessionItem], item: SessionItem) -> None:
    # The request may have stopped listening (answer done, client gone) while the
    # session is still being closed: a late event for it is dropped, never allowed
    # to break the reader that serves every other session.
    try:
        stream.send_nowait(item)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except (JsonRpcError, PeerClosed, anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


async def remove_dir(path: Path) -> None:
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(shutil.rmtree, path, True)
