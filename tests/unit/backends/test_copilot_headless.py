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
    assert "provider" not in params
    assert "systemMessage" not in session_create_params(
        model="m", workdir=tmp_path, system="", allowed_tools=(), reasoning_effort=None
    )


def test_session_params_skip_every_instruction_file(tmp_path: Path) -> None:
    """Regression: a headless session loaded ~/.copilot/copilot-instructions.md, AGENTS.md
    and friends up to a git root, and COPILOT_CUSTOM_INSTRUCTIONS_DIRS (the process flag
    --no-custom-instructions does nothing for a session; this field does)."""
    params = session_create_params(
        model="m", workdir=tmp_path, system="S", allowed_tools=(), reasoning_effort=None
    )
    assert params["skipCustomInstructions"] is True
    assert params["systemMessage"] == {"mode": "append", "content": "S"}


def test_session_params_carry_the_byok_provider(tmp_path: Path) -> None:
    provider = {"type": "anthropic", "baseUrl": "http://127.0.0.1:9", "apiKey": "k"}
    params = session_create_params(
        model="m",
        workdir=tmp_path,
        system="",
        allowed_tools=(),
        reasoning_effort=None,
        provider=provider,
    )
    assert params["provider"] == provider


class _FakeRun:
    alive = True


SHELL_PERMISSION = {
    "type": "permission.requested",
    "data": {"requestId": "r9", "permissionRequest": {"kind": "shell"}},
}


async def session_event_replies(
    event: dict[str, Any], allowed: tuple[str, ...]
) -> tuple[list[tuple[str, Any]], list[Any]]:
    """What a process sends the CLI for one session event, and what it forwards to the
    session's reader."""
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
        process._on_notification("session.event", {"sessionId": "s1", "event": event})
    send.close()
    with receive:
        forwarded = [item async for item in receive]
    return sent, forwarded


async def _permission_reply(allowed: tuple[str, ...]) -> list[tuple[str, Any]]:
    sent, forwarded = await session_event_replies(SHELL_PERMISSION, allowed)
    # the request is answered, never forwarded to the chat as an event
    assert forwarded == []
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


# -- background work and stuck processes -----------------------------------------------------


def headless_backend(tmp_path: Path) -> Any:
    from copilot_cli_proxy.backends.copilot_headless import CopilotHeadlessBackend
    from copilot_cli_proxy.settings import Settings

    cli = tmp_path / "copilot"
    cli.write_text("")
    return CopilotHeadlessBackend(
        Settings(copilot_cli_path=str(cli), temp_dir_base=str(tmp_path / "requests"))
    )


async def test_background_work_survives_any_exception_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: _make_ready caught only ProxyError; ENOSPC, EMFILE or any other error
    ended the server's task group, and every later chat got 500 'task group is not
    active' while /health said ok."""
    import errno

    from copilot_cli_proxy.backends import copilot_headless

    monkeypatch.setattr(copilot_headless, "BACKOFF_S", (0.01,))
    monkeypatch.setattr(copilot_headless, "CHECK_INTERVAL_S", 0.01)
    backend = headless_backend(tmp_path)
    failures = [OSError(errno.ENOSPC, "No space left on device"), RuntimeError("boom")]
    attempts = 0
    seen: list[list[str]] = []
    recovered = anyio.Event()

    async def check_processes() -> None:
        nonlocal attempts
        attempts += 1
        seen.append(backend.problems())
        if failures:
            raise failures.pop(0)
        recovered.set()

    async def nothing(*args: Any) -> None:
        return None

    backend._check_processes = check_processes
    backend._check_login = nothing
    backend._make_ready = nothing
    async with anyio.create_task_group() as tg:
        await backend.start(tg)
        tg.start_soon(backend.supervise)
        with anyio.fail_after(5):
            await recovered.wait()
        # still alive, and ticking: the next check comes
        with anyio.fail_after(5):
            while attempts < 5:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert seen[1] == ["keeping a copilot process ready failed: [Errno 28] No space left on device"]
    assert seen[2] == ["keeping a copilot process ready failed: boom"]
    assert backend.background_error is None and backend.problems() == []


async def test_a_failure_making_a_session_ahead_never_escapes(tmp_path: Path) -> None:
    backend = headless_backend(tmp_path)

    async def broken(key: Any) -> Any:
        raise OSError(24, "Too many open files")

    backend._open = broken
    async with anyio.create_task_group() as tg:
        await backend.start(tg)
        from copilot_cli_proxy.backends.copilot_headless import ReadyKey

        backend._prepare(ReadyKey("m", "", None))
    assert backend.background_error == (
        "making a copilot session ahead failed: [Errno 24] Too many open files"
    )


async def test_a_request_dir_that_cannot_be_made_is_a_clear_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from copilot_cli_proxy.backends import copilot_headless
    from copilot_cli_proxy.errors import ProxyError

    def full(**kwargs: Any) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(copilot_headless.tempfile, "mkdtemp", full)
    backend = headless_backend(tmp_path)
    with pytest.raises(ProxyError) as caught:
        await backend._open(copilot_headless.ReadyKey("m", "", None))
    assert (caught.value.code, caught.value.status) == ("cli_unavailable", 503)
    assert "No space left on device" in caught.value.message


class _SilentRun:
    """A process that takes input and never answers (stopped with SIGSTOP)."""

    alive = True
    pid = 4242

    def __init__(self) -> None:
        class Stdin:
            async def send(self, data: bytes) -> None:
                return None

        self.process = type("P", (), {"stdin": Stdin(), "returncode": None})()
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_a_stuck_send_is_a_503_that_does_not_cite_request_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: session.send's own 30 s deadline escaped as a TimeoutError, which the
    server reported as a 504 citing REQUEST_TIMEOUT (300 s)."""
    from copilot_cli_proxy.backends import copilot_session
    from copilot_cli_proxy.errors import ProxyError

    monkeypatch.setattr(copilot_session, "RPC_TIMEOUT_S", 0.05)
    process = HeadlessCopilot(_SilentRun(), ["copilot"], ())  # type: ignore[arg-type]
    send, receive = anyio.create_memory_object_stream[Any](1)
    session = copilot_session.OpenSession(process, "s1", receive, tmp_path)
    with pytest.raises(ProxyError) as caught:
        await copilot_session.send_prompt(session, "hi")
    assert (caught.value.code, caught.value.status) == ("cli_unavailable", 503)
    assert "REQUEST_TIMEOUT" not in caught.value.message
    assert caught.value.message, "a 503 must say why"
    send.close()
    receive.close()


async def test_a_process_that_does_not_answer_a_ping_is_given_up() -> None:
    run = _SilentRun()
    process = HeadlessCopilot(run, ["copilot"], ())  # type: ignore[arg-type]
    assert await process.ping(0.05) is False
    assert process.alive
    await process.give_up("it stopped answering")
    assert run.closed and not process.alive and process.wedged == "it stopped answering"
