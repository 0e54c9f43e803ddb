"""The long-lived copilot runner's pure parts and its permission policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from copilot_cli_proxy.backends.copilot_headless import (
    APPROVAL,
    REFUSAL,
    HeadlessCopilot,
    build_headless_argv,
    session_create_params,
)


def test_headless_argv_denies_tools_and_never_allows_all() -> None:
    argv = build_headless_argv("/x/copilot")
    assert argv[:3] == ["/x/copilot", "--headless", "--stdio"]
    assert {"--deny-tool=shell", "--deny-tool=write", "--deny-tool=url"} <= set(argv)
    assert "--disable-builtin-mcps" in argv and "--no-ask-user" in argv
    assert not any(a.startswith(("--allow-all", "--yolo", "--allow-tool")) for a in argv)
    opted_in = build_headless_argv("/x/copilot", ("view",))
    assert not any(a.startswith("--deny-tool") for a in opted_in)


def test_session_params_have_no_tools_and_ask_for_permissions(tmp_path: Path) -> None:
    params = session_create_params(
        model="gpt-5-mini",
        workdir=tmp_path,
        system="Be brief.",
        allowed_tools=(),
        reasoning_effort="low",
    )
    assert params["availableTools"] == []
    assert params["requestPermission"] is True
    assert params["requestUserInput"] is False
    assert params["workingDirectory"] == str(tmp_path)
    assert params["systemMessage"] == {"mode": "append", "content": "Be brief."}
    assert params["reasoningEffort"] == "low"
    assert "systemMessage" not in session_create_params(
        model="m", workdir=tmp_path, system="", allowed_tools=(), reasoning_effort=None
    )


class _FakeRun:
    alive = True


async def _permission_reply(allowed: tuple[str, ...]) -> list[tuple[str, Any]]:
    process = HeadlessCopilot(_FakeRun(), ["copilot"], allowed)  # type: ignore[arg-type]
    sent: list[tuple[str, Any]] = []

    async def fake_request(method: str, params: Any = None) -> Any:
        sent.append((method, params))
        return {"success": True}

    process.peer.request = fake_request  # type: ignore[method-assign]
    send, receive = anyio.create_memory_object_stream[Any](10)
    process._sessions["s1"] = send
    async with anyio.create_task_group() as tg:
        process._tg = tg
        process._on_notification(
            "session.event",
            {
                "sessionId": "s1",
                "event": {
                    "type": "permission.requested",
                    "data": {"requestId": "r9", "permissionRequest": {"kind": "shell"}},
                },
            },
        )
    send.close()
    with receive:
        # the request is answered, never forwarded to the chat as an event
        with pytest.raises(anyio.EndOfStream):
            receive.receive_nowait()
    return sent


async def test_permission_requests_are_refused_by_default() -> None:
    sent = await _permission_reply(())
    assert sent == [
        (
            "session.permissions.handlePendingPermissionRequest",
            {"sessionId": "s1", "requestId": "r9", "result": REFUSAL},
        )
    ]


async def test_permission_requests_are_approved_once_when_the_operator_allowed_tools() -> None:
    sent = await _permission_reply(("view",))
    assert sent[0][1]["result"] == APPROVAL


def test_a_late_event_for_a_closed_request_does_not_break_the_reader() -> None:
    """Regression: send_nowait to a closed receiver raised inside the reader task,
    which ended the long-lived process for every other session."""
    process = HeadlessCopilot(_FakeRun(), ["copilot"], ())  # type: ignore[arg-type]
    send, receive = anyio.create_memory_object_stream[Any](10)
    other_send, other_receive = anyio.create_memory_object_stream[Any](10)
    process._sessions["gone"] = send
    process._sessions["live"] = other_send
    receive.close()  # the request stopped listening; the session is not deleted yet
    event = {"type": "assistant.message_delta", "data": {"deltaContent": "x"}}
    process._on_notification("session.event", {"sessionId": "gone", "event": event})
    process._on_notification("session.event", {"sessionId": "live", "event": event})
    with other_receive:
        assert other_receive.receive_nowait() == event
    send.close()
    other_send.close()


class _ClosedStdin:
    async def send(self, data: bytes) -> None:
        raise anyio.BrokenResourceError


class _StoppingRun:
    """A process whose stdin was already closed: the server is stopping."""

    alive = True

    def __init__(self) -> None:
        self.process = type("P", (), {"stdin": _ClosedStdin()})()


async def test_closing_a_session_while_the_process_stops_still_removes_its_dir(
    tmp_path: Path,
) -> None:
    """Regression: session.abort on a closed stdin raised BrokenResourceError, which
    skipped the dir removal and failed the server's shutdown."""
    from copilot_cli_proxy.backends.copilot_headless import CopilotHeadlessBackend, OpenSession
    from copilot_cli_proxy.runtime.jsonrpc import PeerClosed
    from copilot_cli_proxy.settings import Settings

    process = HeadlessCopilot(_StoppingRun(), ["copilot"], ())  # type: ignore[arg-type]
    with pytest.raises(PeerClosed):
        await process.peer.request("ping")
    workdir = tmp_path / "req-x"
    workdir.mkdir()
    send, receive = anyio.create_memory_object_stream[Any](1)
    process._sessions["s1"] = send
    backend = CopilotHeadlessBackend(Settings(temp_dir_base=str(tmp_path)))
    await backend._close(OpenSession(process, "s1", receive, workdir), abort=True)
    assert not workdir.exists()
    send.close()
