"""The servers over fakes that e2e modules share, and how to drive each backend.

A target is one server running one backend kind with one runner: the copilot and claude
CLIs (tests/fakes) one-shot and persistent, and an OpenAI-compatible upstream
(tests/fakeupstream). The contract's tests ask a target for a *behaviour* (answer this
text, fail, refuse the login, stall, stream slowly); the target turns it into the fake's
own means: a directive in the prompt for a fake CLI, a scripted reply or fault for the
fake upstream. The tests then check what a client sees, the same for every target.

A server start costs seconds (imports, the CLIs' version and model probes, the
long-lived processes): ``ServerPool`` starts each configuration once per session, and
every module that needs it shares it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import ProxyServer, ask, fake_env, start_server, wait_until
from tests.fakeupstream.server import FakeUpstream, Fault, Reply

# kind-runner: every backend kind with every runner it has.
TARGETS = (
    "copilot-oneshot",
    "copilot-persistent",
    "claude-oneshot",
    "claude-persistent",
    "openai",
)
UPSTREAM_TEXT = "Hello from the fake upstream, in several pieces."
Messages = list[dict[str, str]]


@dataclass
class Target:
    name: str
    server: ProxyServer
    upstream: FakeUpstream | None = None

    @property
    def kind(self) -> str:
        return self.name.partition("-")[0]

    @property
    def runner(self) -> str:
        return self.name.partition("-")[2]

    @property
    def runs_a_cli(self) -> bool:
        return self.upstream is None

    @property
    def model(self) -> str:
        return {"copilot": "gpt-5-mini", "claude": "sonnet", "openai": "gpt-4.1"}[self.kind]

    @property
    def takes_a_prompt_of_any_size(self) -> bool:
        """One-shot copilot takes its prompt as one argv string, which Linux caps at
        128 KiB: a larger one is a declared 413, never a failed spawn."""
        return self.name != "copilot-oneshot"

    def fake(self) -> FakeUpstream:
        assert self.upstream is not None, f"{self.name} has no upstream"
        return self.upstream

    # -- behaviours -----------------------------------------------------------------------

    def answering(self, text: str) -> Messages:
        """A request the backend answers with exactly ``text``."""
        if self.upstream is not None:
            self.upstream.script(Reply(text, piece_chars=3))
            return ask("say it")
        return ask(f"FAKE_REPLY={text}\nsay it")

    def expected_echo(self, prompt: str) -> str:
        """What the backend answers to ``ask(prompt)`` when nothing is scripted."""
        if self.upstream is not None:
            return self.upstream.default_text
        return "echo: " + prompt.splitlines()[-1]

    def completion_tokens(self, answer: str) -> int:
        """What the backend counts for ``answer`` (the fakes count deterministically): the
        usage a client gets is the backend's own, not an estimate of the server's."""
        if self.upstream is not None:
            return -(-len(answer) // 4)  # one token per piece of 4 characters
        return len(answer) // 4 + 1

    def failing_after_text(self) -> Messages:
        """Some text, then the backend fails: a CLI that reports an error mid-answer, an
        upstream whose connection drops mid-stream."""
        if self.upstream is not None:
            self.upstream.fail_next(Fault("drop", after_chunks=3))
            return ask("hello world")
        return ask("FAKE_FAIL_MIDSTREAM\nhello world")

    def failing_before_text(self) -> Messages:
        """The backend fails before any answer reached the client (a non-stream
        request's whole answer is held back, so a mid-answer crash counts): a CLI
        that exits non-zero, an upstream's 500."""
        if self.upstream is not None:
            self.upstream.fail_next(Fault("status", status=500))
            return ask("hello world")
        return ask("FAKE_CRASH\nhello world")

    @contextmanager
    def logged_out(self) -> Iterator[Messages]:
        """The backend's credential is refused: a CLI that is not logged in, an upstream
        that answers 401 to everything."""
        if self.upstream is None:
            yield ask("FAKE_NOT_LOGGED_IN\nhi")
            return
        self.upstream.refuse_all = True
        try:
            yield ask("hi")
        finally:
            self.upstream.refuse_all = False

    def stalling(self) -> Messages:
        """No answer for far longer than a test's REQUEST_TIMEOUT."""
        if self.upstream is not None:
            # Before the response's headers; ended early when the fake stops.
            self.upstream.fail_next(Fault("stall", after_chunks=-1, seconds=20))
            return ask("hi")
        return ask("FAKE_SLEEP=30\nhi")

    @contextmanager
    def streaming_slowly(self) -> Iterator[Messages]:
        """A long answer whose pieces come slowly: a client can leave in the middle."""
        if self.upstream is None:
            yield ask("FAKE_DELTA_DELAY=0.3\nFAKE_BIG=400\nx")
            return
        self.upstream.script(Reply("z" * 600, piece_chars=1))
        self.upstream.chunk_delay_s = 0.05
        try:
            yield ask("long")
        finally:
            self.upstream.chunk_delay_s = 0.0

    # -- the server's state -----------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.server.url + "/health", timeout=10).json()
        return body

    def idle(self) -> bool:
        """Nothing of a finished or abandoned request is left: no CLI process but the
        long-lived ones, no request dir but theirs, no busy slot or upstream connection."""
        health = self.health()
        if health["processes"]["active"] or health["processes"]["waiting"]:
            return False
        pids, dirs = len(self.server.cli_pids()), len(self.server.request_dirs())
        if self.name == "copilot-persistent":
            # One server process (loader + worker), its private home, and a dir per
            # session made ahead for a later request.
            ready, homes = health["sessions_ready"], health["processes_alive"]
            return pids == 2 and homes == 1 and dirs == ready + homes and ready <= 4
        if self.name == "claude-persistent":
            return pids <= 2 and dirs == pids  # warm processes, each in its own dir
        if self.upstream is not None:
            (backend,) = health["backends"]
            return dirs == 0 and pids == 0 and backend["connections"]["busy"] == 0
        return pids == 0 and dirs == 0

    def settle(self, timeout: float = 15.0) -> None:
        assert wait_until(self.idle, timeout), (
            f"{self.name} not idle: pids={self.server.cli_pids()} "
            f"dirs={self.server.request_dirs()} health={self.health()}"
        )


def upstream_backends_file(upstream: FakeUpstream) -> str:
    return f"""
[[backend]]
id = "up"
kind = "openai"
base_url = "{upstream.url}/v1"
auth = {{ type = "bearer", token_env = "UPSTREAM_TOKEN" }}
timeout_s = 60
"""


def start_target(name: str, tmp_path: Path, upstream: FakeUpstream | None, **extra: str) -> Target:
    """A server running the backend ``name`` (one of TARGETS), idle and ready."""
    if name == "openai":
        assert upstream is not None
        backends = tmp_path / "backends.toml"
        backends.write_text(upstream_backends_file(upstream))
        env = {
            "BACKENDS_FILE": str(backends),
            "UPSTREAM_TOKEN": "github_pat_11CONFORMANCE0000000000",
            "STATE_DIR": str(tmp_path / "state"),
            "REQUEST_TIMEOUT": "20000",
            **extra,
        }
        target = Target(name, start_server(tmp_path, env), upstream)
    else:
        kind, _, runner = name.partition("-")
        target = Target(name, start_server(tmp_path, fake_env(kind, RUNNER=runner, **extra)))
    try:
        # The long-lived processes start in the background after start-up, and the
        # start-up probes (version, models) are CLI runs that end by themselves.
        target.settle(30)
    except BaseException:
        target.server.stop()
        raise
    return target


@dataclass
class ServerPool:
    """One server per (target, settings), started when first asked for, stopped at the
    end of the session, each then checked to have left no process and no dir behind."""

    base: Path
    _upstream: FakeUpstream | None = None
    _started: dict[tuple[str, tuple[tuple[str, str], ...]], Target] = field(default_factory=dict)

    def upstream(self) -> FakeUpstream:
        if self._upstream is None:
            self._upstream = FakeUpstream(default_text=UPSTREAM_TEXT).start()
        return self._upstream

    def get(self, name: str, **extra: str) -> Target:
        key = (name, tuple(sorted(extra.items())))
        if key not in self._started:
            where = self.base / f"{name}-{len(self._started)}"
            where.mkdir(parents=True)
            upstream = self.upstream() if name == "openai" else None
            self._started[key] = start_target(name, where, upstream, **extra)
        return self._started[key]

    def stop(self) -> None:
        left: list[str] = []
        for target in self._started.values():
            stray = target.server.stop()
            if stray or target.server.request_dirs():
                left.append(f"{target.name}: pids {stray}, dirs {target.server.request_dirs()}")
            # Regression: every normal stop logged this for the session made ahead.
            if "could not close copilot session" in target.server.log():
                left.append(f"{target.name}: a session was not closed at stop")
        self._started.clear()
        if self._upstream is not None:
            self._upstream.stop()
        assert not left, f"stopping the servers left something behind: {left}"
