"""The chat REPL in a real pseudo-terminal, against a real HTTP server.

``chat_server_url`` is the only thing that says which server: today a small
OpenAI-compatible stub (chat_stub_server.py) started here; pointing it at the real proxy
needs that fixture changed and the stub-specific expectations (``Echo from …``, the
``please …`` triggers, ``/_stub/requests``) adapted.

TERM=dumb keeps prompt_toolkit's output plain text (no cursor movement), so the
transcript reads like what a user sees; a fresh HOME keeps the line history local.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest

ROOT = Path(__file__).resolve().parents[2]
STUB = Path(__file__).with_name("chat_stub_server.py")
API_KEY = "stub-secret"
TIMEOUT_S = 10.0


@dataclass
class StubServer:
    url: str
    process: subprocess.Popen[str]

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = httpx.get(self.url + "/_stub/requests").json()
        return result


@pytest.fixture(scope="module")
def chat_stub() -> Iterator[StubServer]:
    process = subprocess.Popen(
        [sys.executable, str(STUB), "--api-key", API_KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        # The stub binds port 0 and reports the port the kernel chose: no race for it.
        first_line = process.stdout.readline()
        assert first_line.startswith("PORT "), f"stub did not start: {first_line!r}"
        yield StubServer(f"http://127.0.0.1:{int(first_line.split()[1])}", process)
    finally:
        process.terminate()
        process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="module")
def chat_server_url(chat_stub: StubServer) -> str:
    """Base URL of the OpenAI-compatible server the REPL talks to."""
    return chat_stub.url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChatTerminal:
    """``python -m chat_client`` in a pseudo-terminal, as a user would drive it."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("COPILOT_SERVER_URL", "COPILOT_MODEL", "COPILOT_API_KEY")
        }
        # The key comes from the environment, so a test passing --api-key shows that
        # the flag wins.
        env.update({"TERM": "dumb", "HOME": str(home), "COPILOT_API_KEY": API_KEY})
        self.transcript = io.StringIO()
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "chat_client", *args],
            cwd=str(ROOT),
            env=env,
            encoding="utf-8",
            codec_errors="replace",
            dimensions=(24, 200),
            timeout=TIMEOUT_S,
        )
        self.child.logfile_read = self.transcript

    def expect(self, text: str | type[pexpect.EOF]) -> str:
        """Wait for ``text`` (or the end); returns what came before it, with plain newlines."""
        try:
            self.child.expect_exact(text)
        except (pexpect.TIMEOUT, pexpect.EOF) as error:
            raise AssertionError(
                f"never saw {text!r}; transcript:\n{self.transcript.getvalue()}"
            ) from error
        return str(self.child.before).replace("\r\n", "\n")

    def prompt(self, model: str) -> str:
        """Wait for the prompt and for the terminal to be ready for keys.

        prompt_toolkit prints the prompt and only then puts the terminal in raw mode;
        a key sent in between goes to the line discipline instead (a Ctrl-D there is an
        end-of-file nobody reads). Raw mode switches echo off, which we can see.
        """
        before = self.expect(f"{model}> ")
        assert self.child.waitnoecho(TIMEOUT_S), self.transcript.getvalue()
        return before

    def type(self, line: str, *, model: str) -> str:
        """Type a line and return the output up to the next prompt (echo included)."""
        self.child.sendline(line)
        return self.prompt(model)

    def leave_with_ctrl_d(self) -> int | None:
        self.child.sendcontrol("d")
        return self.wait()

    def wait(self) -> int | None:
        """Wait for the chat to end; its exit status (None if a signal ended it)."""
        self.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus  # type: ignore[no-any-return]

    def close(self) -> None:
        """After a failed test: stop the chat and free its pty."""
        if not self.child.closed:
            self.child.close(force=True)


@pytest.fixture
def terminals() -> Iterator[list[ChatTerminal]]:
    opened: list[ChatTerminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_chat_session_in_a_real_terminal(
    chat_server_url: str, chat_stub: StubServer, home: Path, terminals: list[ChatTerminal]
) -> None:
    chat = ChatTerminal(home, "--server", chat_server_url, "--model", "stub-fast")
    terminals.append(chat)
    banner = chat.prompt("stub-fast")
    assert f"copilot-chat: {chat_server_url}/v1, model stub-fast." in banner

    out = chat.type("hello there", model="stub-fast")
    assert "Echo from stub-fast (messages=1, system=none): hello there\n" in out

    out = chat.type("/models", model="stub-fast")
    assert "* stub-fast\n  stub-slow\n" in out

    out = chat.type("/model stub-slow", model="stub-slow")
    assert "Model set to stub-slow" in out
    assert "Model: stub-slow" in chat.type("/model", model="stub-slow")

    # The slow answer takes a minute in all; seeing its first pieces proves streaming.
    chat.child.sendline("count for me")
    chat.expect("tick2 ")
    chat.child.sendcontrol("c")
    out = chat.prompt("stub-slow")
    assert "[answer interrupted; this turn was not kept]" in out
    assert wait_for(lambda: chat_stub.requests()[-1]["outcome"] == "client_gone")

    chat.type("/model stub-fast", model="stub-fast")
    out = chat.type("second question", model="stub-fast")
    # The interrupted turn is gone: hello, its answer, and this question.
    assert "(messages=3, system=none): second question" in out

    out = chat.type("/system Answer like a pirate.", model="stub-fast")
    assert "System prompt set; new conversation." in out
    out = chat.type("ahoy?", model="stub-fast")
    assert "(messages=2, system=Answer like a pirate.): ahoy?" in out

    out = chat.type("/history", model="stub-fast")
    assert (
        "system: Answer like a pirate.\n"
        "you: ahoy?\n"
        "assistant: Echo from stub-fast (messages=2, system=Answer like a pirate.): ahoy?\n"
    ) in out

    out = chat.type("/clear", model="stub-fast")
    assert "New conversation (the system prompt is kept)." in out
    out = chat.type("after clear", model="stub-fast")
    assert "(messages=2, system=Answer like a pirate.): after clear" in out

    out = chat.type("/frobnicate", model="stub-fast")
    assert "error: Unknown command /frobnicate: type /help for the commands" in out

    chat.type("/model no-such-model", model="no-such-model")
    out = chat.type("are you there?", model="no-such-model")
    assert (
        "error: Not found (404): The model 'no-such-model' does not exist or is not served "
        "here. Available models: stub-fast, stub-slow. See /models.\n"
    ) in out
    chat.type("/model stub-fast", model="stub-fast")
    out = chat.type("are you there?", model="stub-fast")
    # The failed attempt left nothing behind: system, after clear, its answer, this.
    assert "(messages=4, system=Answer like a pirate.): are you there?" in out

    out = chat.type("please rate limit", model="stub-fast")
    assert "error: Rate limited (429): Too many requests. Retry after 7 s.\n" in out
    out = chat.type("please fail midway", model="stub-fast")
    assert "error: The answer failed midway [cli_failed]: The CLI crashed.\n" in out

    # Ctrl-C at the prompt throws the typed line away and sends nothing.
    sent_before = len(chat_stub.requests())
    chat.child.send("never sent")
    chat.child.sendcontrol("c")
    chat.prompt("stub-fast")
    assert len(chat_stub.requests()) == sent_before

    assert chat.leave_with_ctrl_d() == 0
    history = (home / ".copilot-chat_history").read_text()
    assert "+/models" in history and "+are you there?" in history
    assert "never sent" not in history


@pytest.mark.parametrize("case", ["wrong key", "server down"])
def test_request_errors_are_one_line_and_the_chat_stays_usable(
    case: str, chat_server_url: str, home: Path, terminals: list[ChatTerminal]
) -> None:
    if case == "wrong key":
        server, expected = (
            chat_server_url,
            "error: The server refused the API key (401): Invalid API key. "
            "Set --api-key or COPILOT_API_KEY.\n",
        )
    else:
        server = f"http://127.0.0.1:{closed_port()}"
        expected = f"error: Cannot reach the server at {server}/v1"
    chat = ChatTerminal(home, "--server", server, "--api-key", "wrong")
    terminals.append(chat)
    chat.prompt("default")
    out = chat.type("hello?", model="default")
    assert expected in out
    assert "Traceback" not in out
    assert "Commands:" in chat.type("/help", model="default")
    chat.child.sendline("/quit")
    assert chat.wait() == 0


def test_no_stream_answers_whole(
    chat_server_url: str, chat_stub: StubServer, home: Path, terminals: list[ChatTerminal]
) -> None:
    chat = ChatTerminal(home, "--server", chat_server_url, "--no-stream", "--system", "Be brief.")
    terminals.append(chat)
    chat.prompt("default")
    out = chat.type("whole please", model="default")
    assert "Echo from stub-fast (messages=2, system=Be brief.): whole please\n" in out
    assert chat_stub.requests()[-1]["stream"] is False
    assert chat.leave_with_ctrl_d() == 0


def test_piped_input_needs_no_terminal(chat_server_url: str, home: Path) -> None:
    """``echo question | copilot-chat`` answers and ends at the end of the input."""
    env = {**os.environ, "HOME": str(home), "COPILOT_API_KEY": API_KEY}
    result = subprocess.run(
        [sys.executable, "-m", "chat_client", "--server", chat_server_url],
        input="first\n/model nope\nlost\n/model stub-fast\nsecond\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0
    assert "Echo from stub-fast (messages=1, system=none): first\n" in result.stdout
    assert "Echo from stub-fast (messages=3, system=none): second\n" in result.stdout
    assert result.stderr.startswith("error: Not found (404): The model 'nope' does not exist")
    assert len(result.stderr.splitlines()) == 1
