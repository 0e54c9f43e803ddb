"""One session of a long-lived copilot process: made for a request (or ahead of one),
one turn of it read as events, and the prompt sent.

The backend (``copilot_headless.py``) decides which process serves it and when it is
closed; this module opens it and reads it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from copilot_cli_proxy.backends.base import BackendEvent, Finish
from copilot_cli_proxy.backends.copilot_auth import provider_from_env
from copilot_cli_proxy.backends.copilot_isolation import mark_git_root
from copilot_cli_proxy.backends.copilot_output import CopilotOutputParser
from copilot_cli_proxy.backends.copilot_rpc import (
    RPC_TIMEOUT_S,
    HeadlessCopilot,
    ProcessGone,
    SessionItem,
    remove_dir,
    session_create_params,
)
from copilot_cli_proxy.backends.copilot_tools import CopilotToolParser
from copilot_cli_proxy.core.request import ToolSpec
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.runtime.jsonrpc import JsonRpcError, PeerClosed
from copilot_cli_proxy.runtime.workdir import PREFIX, ensure_base


@dataclass(frozen=True, slots=True)
class ReadyKey:
    model: str
    system: str
    effort: str | None


@dataclass(slots=True)
class OpenSession:
    process: HeadlessCopilot
    session_id: str
    events: MemoryObjectReceiveStream[SessionItem]
    workdir: Path


async def open_session(
    key: ReadyKey,
    *,
    temp_base: Path,
    allowed_tools: tuple[str, ...],
    process: Callable[[], Awaitable[HeadlessCopilot]],
    tools: tuple[ToolSpec, ...] = (),
) -> OpenSession:
    """A new session in its own request dir (removed again if anything fails), on the
    process ``process()`` gives; ``tools``: the client's, the session's custom tools."""
    try:
        ensure_base(temp_base)
        workdir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=temp_base))
    except OSError as exc:
        raise ProxyError(
            "cli_unavailable",
            f"The server could not make a request dir for copilot: {exc.strerror or exc}.",
        ) from None
    try:
        mark_git_root(workdir)
        chosen = await process()
        params = session_create_params(
            model=key.model,
            workdir=workdir,
            system=key.system,
            allowed_tools=allowed_tools,
            reasoning_effort=key.effort,
            provider=provider_from_env(os.environ),
            tools=tools,
        )
        session_id, events = await chosen.open_session(params)
    except (PeerClosed, JsonRpcError) as exc:
        await remove_dir(workdir)
        raise ProxyError("cli_unavailable", f"The copilot CLI is unavailable: {exc}") from None
    except TimeoutError:
        await remove_dir(workdir)
        raise ProxyError(
            "cli_unavailable",
            f"The copilot CLI did not open a session within {RPC_TIMEOUT_S:g} s.",
        ) from None
    except OSError as exc:
        await remove_dir(workdir)
        raise ProxyError(
            "cli_unavailable",
            f"The server could not prepare a copilot session: {exc.strerror or exc}.",
        ) from None
    except BaseException:
        await remove_dir(workdir)
        raise
    return OpenSession(chosen, session_id, events, workdir)


async def send_prompt(session: OpenSession, prompt: str) -> None:
    try:
        with anyio.fail_after(RPC_TIMEOUT_S):
            await session.process.peer.request(
                "session.send", {"sessionId": session.session_id, "prompt": prompt}
            )
    except TimeoutError:
        # Our own deadline, not REQUEST_TIMEOUT: the process is stuck, and the
        # supervisor replaces a process that stops answering.
        raise ProxyError(
            "cli_unavailable",
            f"The copilot CLI did not take the prompt within {RPC_TIMEOUT_S:g} s.",
        ) from None


async def read_turn(
    session: OpenSession, reader: CopilotOutputParser, note_login: Callable[[bool], None]
) -> AsyncGenerator[BackendEvent, None]:
    """One sent prompt's turn, until the session is idle (its text, its usage, Finish),
    or until the model called the client's tools (``CopilotToolParser``): then the
    answer ends with the calls, and the caller aborts the unfinished turn."""
    async for item in session.events:
        if isinstance(item, ProcessGone):
            raise ProxyError(
                "cli_unavailable",
                f"The copilot CLI stopped while answering: {item.reason}. "
                "The next request starts a fresh one.",
            )
        try:
            events = reader.feed(item)
        except ProxyError as exc:
            if exc.code == "cli_not_logged_in":
                note_login(False)
            raise
        for event in events:
            yield event
        if isinstance(reader, CopilotToolParser) and reader.calls_done:
            note_login(True)
            return
        if reader.idle:
            break
    if not reader.idle:
        raise ProxyError("cli_failed", "The copilot session ended without an answer.")
    note_login(True)
    yield reader.session_usage()
    yield Finish("stop")
