"""RUNNER=persistent end to end over the fake CLIs' long-lived modes: copilot's headless
JSON-RPC server (one process, one session per request) and claude's warm processes
(one per request, replaced after it): requests stay apart, tools stay off, concurrent
requests share the long-lived process, and a dead or wedged one is replaced. The
contract every runner shares (answers, usage, errors, cleanup after a disconnect or a
timeout, big prompts) is tests/e2e/conformance."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.harness import ProxyServer, ask, fake_env, start_server, wait_until
from tests.e2e.targets import ServerPool, Target


def persistent_env(service: str, **extra: str) -> dict[str, str]:
    return fake_env(service, RUNNER="persistent", **extra)


def default_model(service: str) -> str:
    return "gpt-5-mini" if service == "copilot" else "sonnet"


def settle(proxy: ProxyServer, service: str) -> None:
    """Back to idle: copilot keeps its one server (loader + worker), its private copilot
    home, and a dir only per session made ahead; claude keeps one warm process (and its
    dir) per recent key, nothing else."""
    Target(f"{service}-persistent", proxy).settle()


@pytest.fixture(params=["copilot", "claude"])
def persistent(request: pytest.FixtureRequest, fake_servers: ServerPool) -> tuple[str, ProxyServer]:
    service = str(request.param)
    return service, fake_servers.get(f"{service}-persistent").server


def test_requests_do_not_share_a_conversation(persistent: tuple[str, ProxyServer]) -> None:
    """Each request is its own session (copilot) or its own process (claude)."""
    service, proxy = persistent
    client = proxy.client()
    first = json.loads(
        client.chat.completions.create(
            model=default_model(service), messages=ask("FAKE_INSPECT\nfirst")
        )
        .choices[0]
        .message.content
        or "{}"
    )
    second = json.loads(
        client.chat.completions.create(
            model=default_model(service), messages=ask("FAKE_INSPECT\nsecond")
        )
        .choices[0]
        .message.content
        or "{}"
    )
    assert first["cwd"] != second["cwd"], "every request gets its own working directory"
    settle(proxy, service)


def test_system_text_and_tools_off(persistent: tuple[str, ProxyServer]) -> None:
    service, proxy = persistent
    seen = json.loads(
        proxy.client()
        .chat.completions.create(
            model=default_model(service),
            messages=[
                {"role": "system", "content": "Answer like a pirate."},
                {"role": "user", "content": "FAKE_INSPECT\n--allow-all-tools"},
            ],
        )
        .choices[0]
        .message.content
        or "{}"
    )
    if service == "copilot":
        session = seen["session"]
        assert session["systemMessage"] == {"mode": "append", "content": "Answer like a pirate."}
        assert session["availableTools"] == []
        assert session["skipCustomInstructions"] is True
        assert seen["files"] == {}, "the session's dir holds no instruction file"
        assert session["requestPermission"] is True
        assert str(session["workingDirectory"]).startswith(str(proxy.temp_base))
    else:
        assert seen["files"]["system-prompt.md"] == "Answer like a pirate."
        assert "--tools=" in seen["argv"] and "--input-format=stream-json" in seen["argv"]
    assert "--allow-all-tools" not in seen["argv"]
    settle(proxy, service)


def test_concurrent_requests_share_the_long_lived_process(
    persistent: tuple[str, ProxyServer],
) -> None:
    service, proxy = persistent
    results: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        answer = proxy.client().chat.completions.create(
            model=default_model(service), messages=ask(f"FAKE_SLEEP=0.3\nq{i}")
        )
        with lock:
            results.append(answer.choices[0].message.content or "")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    peak = 0
    while any(t.is_alive() for t in threads):
        peak = max(peak, len(proxy.cli_pids()))
        time.sleep(0.02)
    assert sorted(results) == [f"echo: q{i}" for i in range(4)]
    if service == "copilot":
        assert peak == 2, "one long-lived process (loader + worker) serves every session"
    settle(proxy, service)


def long_lived_copilot(proxy: ProxyServer) -> dict[int, str]:
    """pid -> role ("loader"/"worker") once only the long-lived process is left (start-up
    also runs short-lived CLIs: the version probe, model discovery)."""
    assert wait_until(
        lambda: (
            httpx.get(proxy.url + "/health").json().get("processes_alive") == 1
            and len(proxy.cli_pids()) == 2
        ),
        20,
    )
    return {pid: (proxy.pid_dir / str(pid)).read_text().split()[-1] for pid in proxy.cli_pids()}


def rpc_calls(log: Path, method: str) -> int:
    if not log.exists():
        return 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return sum(1 for line in lines if line.get("rpc") == method)


def test_copilot_process_death_is_503_then_a_fresh_process(tmp_path: Path) -> None:
    log = tmp_path / "cli.log"
    proxy = start_server(tmp_path, persistent_env("copilot", FAKE_CLI_LOG=str(log)))
    try:
        first = set(long_lived_copilot(proxy))
        errors: list[int] = []

        def slow() -> None:
            try:
                proxy.client().chat.completions.create(
                    model="gpt-5-mini", messages=ask("FAKE_SLEEP=5\nhi")
                )
            except openai.APIStatusError as exc:
                errors.append(exc.status_code)

        worker = threading.Thread(target=slow)
        worker.start()
        # the CLI has the prompt: the request is waiting for its answer
        assert wait_until(lambda: rpc_calls(log, "session.send") == 1, 20)
        for pid in first:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the loader ends by itself once its worker is gone
        worker.join(20)
        assert errors == [503]
        answer = proxy.client().chat.completions.create(model="gpt-5-mini", messages=ask("again"))
        assert answer.choices[0].message.content == "echo: again"
        assert set(proxy.cli_pids()).isdisjoint(first)
    finally:
        proxy.stop()


def test_wedged_copilot_is_replaced_and_requests_get_a_clear_503(tmp_path: Path) -> None:
    """Regression: after SIGSTOP every request waited 30 s and got a 504 citing
    REQUEST_TIMEOUT, then a 503 with an empty reason, and the process was never replaced.
    A health check (a ping with a deadline, off the request path) replaces it now."""
    proxy = start_server(tmp_path, persistent_env("copilot", REQUEST_TIMEOUT="90000"))
    try:
        roles = long_lived_copilot(proxy)
        worker = next(pid for pid, role in roles.items() if role == "worker")
        os.kill(worker, signal.SIGSTOP)
        try:
            with pytest.raises(openai.APIStatusError) as caught:
                proxy.client(timeout=90.0).chat.completions.create(
                    model="gpt-5-mini", messages=ask("hi")
                )
            error = caught.value
            assert error.status_code == 503
            assert error.body["code"] == "cli_unavailable"  # type: ignore[index]
            message = error.body["message"]  # type: ignore[index]
            # Which deadline notices first depends on the machine's load: the health
            # check's ping or the session's own; either answer names the CLI, not
            # REQUEST_TIMEOUT.
            assert "stopped answering" in message or "did not open a session" in message
            assert "REQUEST_TIMEOUT" not in message
            assert wait_until(
                lambda: httpx.get(proxy.url + "/health").json()["processes_replaced"] == 1, 30
            )
            answer = proxy.client().chat.completions.create(
                model="gpt-5-mini", messages=ask("again")
            )
            assert answer.choices[0].message.content == "echo: again"
            assert set(proxy.cli_pids()).isdisjoint(roles)
            health = httpx.get(proxy.url + "/health").json()
            assert health["processes_alive"] == 1 and health["problems"] == []
        finally:
            for pid in roles:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    finally:
        proxy.stop()
