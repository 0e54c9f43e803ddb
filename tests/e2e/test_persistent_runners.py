"""RUNNER=persistent end to end over the fake CLIs' long-lived modes: copilot's headless
JSON-RPC server (one process, one session per request) and claude's warm processes
(one per request, replaced after it). Everything the one-shot runner guarantees still
holds: shapes, errors, timeouts, disconnect cleanup, tools off."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.harness import ProxyServer, ask, fake_env, start_server, wait_until

MULTIBYTE = "안녕하세요 世界 🎉 café ✓"


def persistent_env(service: str, **extra: str) -> dict[str, str]:
    return fake_env(service, RUNNER="persistent", **extra)


def default_model(service: str) -> str:
    return "gpt-5-mini" if service == "copilot" else "sonnet"


def idle_state(proxy: ProxyServer) -> tuple[int, int]:
    return len(proxy.cli_pids()), len(proxy.request_dirs())


def settle(proxy: ProxyServer, service: str, timeout: float = 10.0) -> None:
    """Back to idle: copilot keeps its one server (loader + worker), its private copilot
    home, and a dir only per session made ahead; claude keeps one warm process (and its
    dir) per recent key, nothing else."""

    def idle() -> bool:
        pids, dirs = idle_state(proxy)
        if service == "copilot":
            # each session made ahead for a later request owns its request dir
            health = httpx.get(proxy.url + "/health").json()
            ready, homes = health["sessions_ready"], health["processes_alive"]
            return pids == 2 and homes == 1 and dirs == ready + homes and ready <= 4
        return pids <= 2 and dirs == pids

    assert wait_until(idle, timeout), (
        f"not idle: pids={proxy.cli_pids()} dirs={proxy.request_dirs()}"
    )


@pytest.fixture(scope="module", params=["copilot", "claude"])
def persistent(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ProxyServer]]:
    service = str(request.param)
    proxy = start_server(tmp_path_factory.mktemp(service), persistent_env(service))
    try:
        # the long-lived process starts in the background after start-up
        assert wait_until(lambda: len(proxy.cli_pids()) >= 1, 20)
        yield service, proxy
    finally:
        proxy.stop()


def test_answers_and_real_usage(persistent: tuple[str, ProxyServer]) -> None:
    service, proxy = persistent
    client = proxy.client()
    completion = client.chat.completions.create(
        model=default_model(service), messages=ask("hello there")
    )
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    # the fakes' deterministic counts: input = bytes // 4 + 1, output = chars // 4 + 1
    assert completion.usage.completion_tokens == len("echo: hello there") // 4 + 1
    assert completion.usage.prompt_tokens is not None and completion.usage.prompt_tokens > 0
    health = httpx.get(proxy.url + "/health").json()
    assert health["runner"] == "persistent"
    settle(proxy, service)


def test_streams_in_pieces_byte_exact(persistent: tuple[str, ProxyServer]) -> None:
    service, proxy = persistent
    chunks = list(
        proxy.client().chat.completions.create(
            model=default_model(service),
            messages=ask(f"FAKE_REPLY={MULTIBYTE}\nx"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 1
    assert "".join(pieces) == MULTIBYTE
    assert [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    settle(proxy, service)


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


def test_large_prompt_has_no_argument_limit(persistent: tuple[str, ProxyServer]) -> None:
    service, proxy = persistent
    big = "x" * (3 * 1024 * 1024)
    completion = proxy.client().chat.completions.create(
        model=default_model(service), messages=ask(big + "\nthe end")
    )
    assert completion.choices[0].message.content == "echo: the end"
    settle(proxy, service)


def test_not_logged_in_and_mid_stream_failure(persistent: tuple[str, ProxyServer]) -> None:
    service, proxy = persistent
    client = proxy.client()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=default_model(service), messages=ask("FAKE_NOT_LOGGED_IN\nhi")
        )
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "cli_not_logged_in"  # type: ignore[index]
    finishes: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(
            model=default_model(service),
            messages=ask("FAKE_FAIL_MIDSTREAM\nhello world"),
            stream=True,
        ):
            if chunk.choices and chunk.choices[0].finish_reason:
                finishes.append(chunk.choices[0].finish_reason)
    assert finishes == []
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


def test_disconnect_and_timeout_leave_nothing_behind(tmp_path: Path, service: str) -> None:
    proxy = start_server(tmp_path, persistent_env(service, REQUEST_TIMEOUT="1500"))
    try:
        assert wait_until(lambda: len(proxy.cli_pids()) >= 1, 20)
        settle(proxy, service)
        body = {
            "model": default_model(service),
            "messages": ask("FAKE_DELTA_DELAY=0.3\nFAKE_BIG=300\nx"),
            "stream": True,
        }
        with (
            proxy.http() as http,
            http.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            assert response.status_code == 200
            for _ in response.iter_raw():
                break
        settle(proxy, service)
        with pytest.raises(openai.APIStatusError) as caught:
            proxy.client().chat.completions.create(
                model=default_model(service), messages=ask("FAKE_SLEEP=30\nhi")
            )
        assert caught.value.status_code == 504
        settle(proxy, service)
        # the long-lived process still answers after both
        answer = proxy.client().chat.completions.create(
            model=default_model(service), messages=ask("still there?")
        )
        assert answer.choices[0].message.content == "echo: still there?"
    finally:
        proxy.stop()
    proxy.assert_clean()  # stopping the server ends the long-lived processes too
    if service == "copilot":
        # Regression: every normal stop logged this for the session made ahead.
        assert "could not close copilot session" not in proxy.log()


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
            assert "stopped answering" in message and "REQUEST_TIMEOUT" not in message
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
