"""The chat REPL in a real pseudo-terminal, against the real server over the fake CLIs.

Every test starts the proxy itself (``harness.start_server``, its own process on a free
loopback port) pointed at the fake ``copilot``/``claude`` of tests/fakes/, and drives
``python -m chat_client`` through a pty the way a person would: wait for the prompt,
type, read what the screen shows. The fakes answer ``echo: <last line of the prompt>``
in several streamed deltas and obey directives typed into the question
(``FAKE_INSPECT``, ``FAKE_DELTA_DELAY=<s>``, ``FAKE_FAIL_MIDSTREAM``,
``FAKE_NOT_LOGGED_IN``; see tests/fakes/README.md), so what reached the CLI (model,
system prompt, conversation) is read back from the CLI itself.

No stub server is needed any more: the real server produces every case tested here,
401 and 429 included (chat_stub_server.py is no longer used by this file). The one
client path it cannot produce is an SSE stream that ends cleanly without a
finish_reason (IncompleteAnswerError); the unit tests cover that one.

TERM=dumb keeps prompt_toolkit's output plain text (no cursor movement), so the
transcript reads like what a user sees; every REPL gets a fresh HOME, so line histories
never leak between tests or into the real home.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.harness import ProxyServer, fake_env, start_server, wait_until

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "secret"
# A deadline, not a pause: on a loaded 2-core machine a piped session of several
# questions took over 10 s, and the test failed on time alone.
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Service:
    """What the fake CLI of one service looks like from the chat."""

    default_model: str  # the server's default, first in /models
    other_model: str  # another id the fake lists
    system_file: str  # the file in the CLI's working directory that carries the system prompt


SERVICES = {
    "copilot": Service("gpt-5-mini", "claude-sonnet-5.5", "AGENTS.md"),
    "claude": Service("sonnet", "haiku", "system-prompt.md"),
}


def prompt_sent(inspect: dict[str, Any]) -> str:
    """The prompt text the CLI got: copilot takes it as ``--prompt=``, claude on stdin."""
    if inspect["stdin"] is not None:
        return str(inspect["stdin"])
    flag = next(str(a) for a in inspect["argv"] if str(a).startswith("--prompt="))
    return flag.removeprefix("--prompt=")


def inspect_answer(out: str) -> dict[str, Any]:
    """The FAKE_INSPECT answer (one JSON line) in what the terminal showed."""
    line = next((line for line in out.splitlines() if line.startswith('{"argv"')), None)
    assert line is not None, f"no FAKE_INSPECT answer in:\n{out}"
    result: dict[str, Any] = json.loads(line)
    return result


def chat_requests(server: ProxyServer) -> list[str]:
    """The server's log line for each finished chat request, oldest first."""
    return [line for line in server.log().splitlines() if "| chat chatcmpl-" in line]


class ChatTerminal:
    """``python -m chat_client`` in a pseudo-terminal, as a user would drive it."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("COPILOT_SERVER_URL", "COPILOT_MODEL", "COPILOT_API_KEY")
        }
        # The key comes from the environment, so a test passing --api-key shows that
        # the flag wins. Servers started without API_KEY ignore it.
        env.update({"TERM": "dumb", "HOME": str(home), "COPILOT_API_KEY": API_KEY})
        self.home = home
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
        # The pty turns \n into \r\n; prompt_toolkit ends the typed line with \r\r\n.
        return re.sub(r"\r+\n", "\n", str(self.child.before))

    def prompt(self, model: str) -> str:
        """Wait for the prompt and for the terminal to be ready for keys.

        prompt_toolkit prints the prompt and only then puts the terminal in raw mode;
        a key sent in between goes to the line discipline instead (a Ctrl-D there is an
        end-of-file nobody reads). Raw mode switches echo off, which we can see.
        """
        before = self.expect(f"{model}> ")
        # pexpect's waitnoecho() polls every 0.1 s; raw mode usually follows in ~10 ms.
        assert wait_until(lambda: not self.child.getecho(), TIMEOUT_S, 0.005), (
            self.transcript.getvalue()
        )
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


OpenChat = Callable[..., ChatTerminal]


@pytest.fixture
def open_chat(tmp_path: Path) -> Iterator[OpenChat]:
    """Start a chat with the given arguments, each in a fresh HOME; all closed at the end."""
    opened: list[ChatTerminal] = []

    def open_(*args: str) -> ChatTerminal:
        home = tmp_path / f"home-{len(opened)}"
        home.mkdir()
        chat = ChatTerminal(home, *args)
        opened.append(chat)
        return chat

    yield open_
    for chat in opened:
        chat.close()


def server_env(service: str) -> dict[str, str]:
    """The real server over the fake CLI of ``service``, wanting API_KEY and running one
    CLI at a time with no queue: a request while another is in flight is a 429 at once.
    A chat asks one question at a time, so it only meets the limit when a test makes it."""
    return fake_env(service, API_KEY=API_KEY, MAX_CONCURRENT="1", MAX_QUEUE="0")


@pytest.fixture
def proxy(tmp_path: Path, service: str) -> Iterator[ProxyServer]:
    """A server per service (conftest: copilot, then claude)."""
    (tmp_path / "server").mkdir()
    server = start_server(tmp_path / "server", server_env(service))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def copilot_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    """One copilot server shared by the shorter tests."""
    server = start_server(tmp_path_factory.mktemp("copilot"), server_env("copilot"))
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def another_client_busy(server: ProxyServer) -> Iterator[None]:
    """Another client (the openai SDK, in a thread) holds the server's only CLI slot with
    a slow streamed answer for as long as the block runs, then goes away."""
    started, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def another_client() -> None:
        try:
            client = server.client(api_key=API_KEY)
            question: ChatCompletionMessageParam = {
                "role": "user",
                "content": "FAKE_DELTA_DELAY=1 a long answer",
            }
            with client.chat.completions.create(
                model="", messages=[question], stream=True
            ) as stream:
                next(iter(stream))  # a 200 and a first chunk: it holds the slot
                started.set()
                release.wait(TIMEOUT_S)
        except BaseException as error:  # reported by the test, not lost in the thread
            failures.append(error)
            started.set()

    thread = threading.Thread(target=another_client, daemon=True)
    thread.start()
    try:
        assert started.wait(TIMEOUT_S) and not failures, failures
        yield
    finally:
        release.set()
        thread.join(TIMEOUT_S)
    assert not failures, failures


def test_chat_session_in_a_real_terminal(
    proxy: ProxyServer, service: str, open_chat: OpenChat
) -> None:
    fake = SERVICES[service]
    default, other = fake.default_model, fake.other_model
    chat = open_chat("--server", proxy.url)
    # The chat asked the server for its models: the prompt names the default one.
    banner = chat.prompt(default)
    assert f"copilot-chat: {proxy.url}/v1, model {default} (the server's default)." in banner

    # Ctrl-C at the prompt throws the typed line away and sends nothing.
    chat.child.send("never sent")
    chat.child.sendcontrol("c")
    chat.prompt(default)

    # A question and its answer, streamed: the fake sends it in pieces of 3, 4, 5… chars.
    out = chat.type("hello there", model=default)
    assert out == "hello there\necho: hello there\n"
    assert wait_until(lambda: chat_requests(proxy), 5.0)
    [request] = chat_requests(proxy)  # "never sent" was not sent
    assert " stream=True status=200 " in request

    out = chat.type("/models", model=default)
    listed = [line[2:] for line in out.splitlines()[1:] if line[:2] in ("  ", "* ")]
    assert listed[0] == default and other in listed
    assert f"* {default}\n" in out  # no model chosen: the server's default is current
    assert f"{default} is the server's default. /model NAME picks another." in out

    out = chat.type(f"/model {other}", model=other)
    assert f"Model set to {other} for the next questions." in out
    assert f"Model: {other}" in chat.type("/model", model=other)
    assert f"* {other}\n" in chat.type("/models", model=other)

    # The CLI itself tells what it got: the new model, and the conversation so far.
    seen = inspect_answer(chat.type("FAKE_INSPECT", model=other))
    assert f"--model={other}" in seen["argv"]
    assert prompt_sent(seen).endswith(
        "[user]\nhello there\n\n[assistant]\necho: hello there\n\n[user]\nFAKE_INSPECT"
    )

    out = chat.type("/system Answer like a pirate.", model=other)
    assert "System prompt set; new conversation." in out
    assert "System prompt: Answer like a pirate." in chat.type("/system", model=other)
    seen = inspect_answer(chat.type("FAKE_INSPECT", model=other))
    assert seen["files"][fake.system_file] == "Answer like a pirate."
    assert prompt_sent(seen) == "FAKE_INSPECT"  # the earlier turns are gone
    assert f"--model={other}" in seen["argv"]

    # /clear drops the turns (here the inspection, whose directive would otherwise
    # answer every later question too) and keeps the system prompt.
    out = chat.type("/clear", model=other)
    assert "New conversation (the system prompt is kept)." in out
    assert "echo: what now?\n" in chat.type("what now?", model=other)
    out = chat.type("/history", model=other)
    assert out == (
        "/history\nsystem: Answer like a pirate.\nyou: what now?\nassistant: echo: what now?\n"
    )

    out = chat.type("/help", model=other)
    assert "Commands:" in out
    for usage in ("/model [NAME]", "/models", "/system [PROMPT]", "/clear", "/history", "/quit"):
        assert f"  {usage} " in out

    out = chat.type("/frobnicate", model=other)
    assert out == (
        "/frobnicate\nerror: Unknown command /frobnicate: type /help for the commands "
        "(start a line with // to send it as text).\n"
    )

    # A model the server does not list is refused, and the close matches offered.
    typo = other[:-1]
    out = chat.type(f"/model {typo}", model=other)
    match = re.fullmatch(
        rf"/model {re.escape(typo)}\nerror: The server has no model {re.escape(typo)}\. "
        r"Did you mean: ([^?]+)\?\n",
        out,
    )
    assert match and other in match.group(1).split(", "), out
    assert "Model: " + other in chat.type("/model", model=other)

    # Back on a real model, an answer streams again (one piece every 0.5 s, ~6 s in all).
    # Ctrl-C: the chat drops the turn, and the server sees the client go and stops the CLI.
    chat.child.sendline("FAKE_DELTA_DELAY=0.5 take your time")
    chat.expect("echo: F")
    assert proxy.cli_pids(), "the CLI should be running while the answer streams"
    chat.child.sendcontrol("c")
    out = chat.prompt(other)
    assert "[answer interrupted; this turn was not kept]" in out
    proxy.assert_clean()
    assert wait_until(lambda: "status=499 code=client_disconnected" in proxy.log(), 5.0)
    assert "echo: after ctrl-c\n" in chat.type("after ctrl-c", model=other)

    # The server is busy with another client: the server's 429, as one line.
    with another_client_busy(proxy):
        out = chat.type("my turn?", model=other)
    assert re.fullmatch(
        r"my turn\?\nerror: Rate limited \(429\): The server is busy: every CLI slot \(1\) is "
        r"in use and the wait queue is full \(0\)\. Retry after \d+ s\.\n",
        out,
    ), out
    proxy.assert_clean()  # the other client left, so its CLI was stopped

    # A failure after the first pieces: the pieces stay on screen, then one error line.
    out = chat.type("FAKE_FAIL_MIDSTREAM", model=other)
    assert re.search(
        r"^FAKE_FAIL_MIDSTREAM\necho: F[^\n]*\nerror: The answer failed midway \[cli_failed\]: "
        rf"The {service} CLI reported an error: [^\n]*FAKE_FAIL_MIDSTREAM[^\n]*\n$",
        out,
    ), out
    out = chat.type("FAKE_NOT_LOGGED_IN", model=other)
    assert out.startswith(
        f"FAKE_NOT_LOGGED_IN\nerror: Server error 503: The {service} CLI on the server is "
        "not logged in. The operator must log it in once: "
    )
    assert out.count("\n") == 2  # the echoed line and one error line
    # Still usable; were a failed turn kept, its directive would fail this question too.
    assert "echo: still usable?\n" in chat.type("still usable?", model=other)

    # Only answered turns were kept: not the 404, the interrupted, the failed ones.
    out = chat.type("/history", model=other)
    assert out == (
        "/history\n"
        "system: Answer like a pirate.\n"
        "you: what now?\n"
        "assistant: echo: what now?\n"
        "you: after ctrl-c\n"
        "assistant: echo: after ctrl-c\n"
        "you: still usable?\n"
        "assistant: echo: still usable?\n"
    )
    proxy.assert_clean()

    # The server goes away: its port is closed now. One line, and the chat goes on.
    proxy.stop()
    out = chat.type("anyone there?", model=other)
    assert out.startswith(f"anyone there?\nerror: Cannot reach the server at {proxy.url}/v1 ("), out
    assert out.count("\n") == 2, out
    assert "Commands:" in chat.type("/help", model=other)

    assert chat.leave_with_ctrl_d() == 0
    history = (chat.home / ".copilot-chat_history").read_text()
    assert "+/models" in history and "+anyone there?" in history
    assert "never sent" not in history


def test_a_wrong_api_key_is_one_line(copilot_proxy: ProxyServer, open_chat: OpenChat) -> None:
    # COPILOT_API_KEY holds the right key: the flag wins over it.
    chat = open_chat("--server", copilot_proxy.url, "--api-key", "wrong")
    chat.prompt("default")  # the server would not list its models to a wrong key
    for line in ("hello?", "/models"):
        out = chat.type(line, model="default")
        assert out == (
            f"{line}\nerror: The server refused the API key (401): Incorrect API key provided. "
            "Set --api-key or COPILOT_API_KEY.\n"
        )
    assert "Commands:" in chat.type("/help", model="default")
    chat.child.sendline("/quit")
    assert chat.wait() == 0


def test_a_model_the_server_lacks_is_one_404_line(
    copilot_proxy: ProxyServer, open_chat: OpenChat
) -> None:
    # --model is taken as given (the server may learn it later); the chat warns at once.
    chat = open_chat("--server", copilot_proxy.url, "--model", "no-such-model")
    banner = chat.prompt("no-such-model")
    assert "The server has no model no-such-model" in banner
    out = chat.type("are you there?", model="no-such-model")
    echoed, error, end = out.split("\n")
    assert (echoed, end) == ("are you there?", "")
    assert error.startswith(
        "error: Not found (404): The model 'no-such-model' does not exist or is not served "
        "here. Available models: gpt-5-mini, "
    )
    assert " claude-sonnet-5.5" in error and error.endswith(". See /models."), error
    chat.child.sendline("/quit")
    assert chat.wait() == 0


def test_piped_input_needs_no_terminal(copilot_proxy: ProxyServer, tmp_path: Path) -> None:
    """``… | copilot-chat --no-stream --system …`` answers each line, whole, and ends at
    the end of the input."""
    env = {**os.environ, "HOME": str(tmp_path), "COPILOT_API_KEY": API_KEY}
    answered_before = len(chat_requests(copilot_proxy))
    script = "lost\n/model nopes\n/model claude-sonnet-5.5\nfirst\nFAKE_INSPECT\n"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chat_client",
            "--server",
            copilot_proxy.url,
            "--no-stream",
            "--system",
            "Be brief.",
            "--model",
            "nope",
        ],
        input=script,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        'Model set to claude-sonnet-5.5 for the next questions.\necho: first\n{"argv": '
    ), result.stdout
    not_found, unknown = result.stderr.splitlines()
    assert not_found.startswith("error: Not found (404): The model 'nope' does not exist")
    assert unknown.startswith("error: The server has no model nopes"), unknown
    seen = inspect_answer(result.stdout)
    assert "--model=claude-sonnet-5.5" in seen["argv"]
    assert seen["files"]["AGENTS.md"] == "Be brief."
    # The failed question was not kept: the CLI saw the first turn and this one.
    assert prompt_sent(seen).endswith(
        "[user]\nfirst\n\n[assistant]\necho: first\n\n[user]\nFAKE_INSPECT"
    )
    assert "lost" not in prompt_sent(seen)
    # Both answers came whole (the 404 is refused before it is a chat request).
    assert wait_until(lambda: len(chat_requests(copilot_proxy)) == answered_before + 2, 5.0)
    for line in chat_requests(copilot_proxy)[answered_before:]:
        assert " stream=False status=200 " in line, line
