"""What an OpenAI SDK user sees, end to end, over the fake copilot and claude CLIs (the
one-shot runner): what the CLI is given (argv, prompt, system text), discovery, the
request checks, the concurrency cap, and a CLI that is missing. The contract every backend
shares (answers, usage, errors, cleanup, big prompts) is tests/e2e/conformance."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.harness import FAKES, ProxyServer, ask, fake_env, start_server, wait_until
from tests.e2e.targets import ServerPool


@pytest.fixture(params=["copilot", "claude"])
def shared(request: pytest.FixtureRequest, fake_servers: ServerPool) -> ProxyServer:
    return fake_servers.get(f"{request.param}-oneshot").server


def test_models_lists_discovered_ids_default_first(shared: ProxyServer) -> None:
    client = shared.client()
    ids = [m.id for m in client.models.list()]
    assert ids[0] == default_model(shared)
    expected = "claude-sonnet-5.5" if is_copilot(shared) else "haiku"
    assert expected in ids
    model = client.models.retrieve(ids[1])
    assert model.id == ids[1]
    assert model.owned_by in ("openai", "anthropic", "google", "xai", "moonshotai", "microsoft")


def test_unknown_model_is_404_listing_valid_ids(shared: ProxyServer) -> None:
    client = shared.client()
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=ask("hi"))
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_not_found"
    assert default_model(shared) in error["message"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_stop_sequence_cuts_the_answer(shared: ProxyServer) -> None:
    client = shared.client()
    messages = ask("FAKE_REPLY=alpha beta STOP gamma delta\nx")
    completion = client.chat.completions.create(
        model=default_model(shared), messages=messages, stop=["STOP"]
    )
    assert completion.choices[0].message.content == "alpha beta "
    assert completion.choices[0].finish_reason == "stop"
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model=default_model(shared), messages=messages, stop="STOP", stream=True
        )
        if c.choices
    )
    assert streamed == "alpha beta "
    shared.assert_clean()


def test_ignored_sampling_params_are_reported(shared: ProxyServer) -> None:
    response = shared.client().chat.completions.with_raw_response.create(
        model=default_model(shared),
        messages=ask("hi"),
        temperature=0.2,
        max_tokens=5,
        extra_body={"some_future_field": {"x": 1}},
    )
    # Fields the server does not know are named too: never dropped silently.
    assert response.headers["x-ignored-params"] == "temperature,max_tokens,some_future_field"
    assert response.parse().choices[0].message.content == "echo: hi"


def inspect(shared: ProxyServer, messages: list[dict[str, str]]) -> dict[str, object]:
    completion = shared.client().chat.completions.create(
        model=default_model(shared),
        messages=messages,  # type: ignore[arg-type]
    )
    return json.loads(completion.choices[0].message.content or "{}")


def test_system_text_goes_to_a_file_in_the_request_dir(shared: ProxyServer) -> None:
    system = "Answer like a pirate. 해적처럼 답하세요."
    seen = inspect(
        shared,
        [
            {"role": "system", "content": system},
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "FAKE_INSPECT\nwho are you?"},
        ],
    )
    files = seen["files"]
    assert isinstance(files, dict)
    argv = seen["argv"]
    assert isinstance(argv, list)
    if is_copilot(shared):
        assert files["AGENTS.md"] == system + "\n\nBe brief."
    else:
        assert files["system-prompt.md"] == system + "\n\nBe brief."
        assert any(str(a).startswith("--system-prompt-file=") for a in argv)
        assert seen["stdin"] == "FAKE_INSPECT\nwho are you?"
    assert str(seen["cwd"]).startswith(str(shared.temp_base))


def test_conversation_is_flattened_with_roles_in_order(shared: ProxyServer) -> None:
    seen = inspect(
        shared,
        [
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": "FAKE_INSPECT\nWhat is my name?"},
        ],
    )
    prompt = prompt_seen(shared, seen)
    first, second, third = (
        prompt.index(t) for t in ("My name is Ada.", "Hello Ada.", "What is my name?")
    )
    assert first < second < third
    assert "[user]" in prompt and "[assistant]" in prompt
    assert prompt.rstrip().endswith("What is my name?")


@pytest.mark.parametrize(
    "hostile", ["--allow-all-tools", "-p", "--yolo --allow-all", "--dangerously-skip-permissions"]
)
def test_prompt_is_data_never_a_flag(shared: ProxyServer, hostile: str) -> None:
    seen = inspect(shared, ask(f"{hostile}\nFAKE_INSPECT\n{hostile}"))
    argv = [str(a) for a in seen["argv"]]  # type: ignore[union-attr]
    for flag in ("--allow-all-tools", "--allow-all", "--yolo", "--dangerously-skip-permissions"):
        assert flag not in argv
    assert hostile in prompt_seen(shared, seen)


def test_tools_are_off_by_default(shared: ProxyServer) -> None:
    argv = [str(a) for a in inspect(shared, ask("FAKE_INSPECT"))["argv"]]  # type: ignore[union-attr]
    if is_copilot(shared):
        assert {"--deny-tool=shell", "--deny-tool=write", "--deny-tool=url"} <= set(argv)
        assert not any(a.startswith(("--allow-tool", "--allow-all")) for a in argv)
    else:
        assert "--tools=" in argv
        assert "--permission-mode=dontAsk" in argv
        assert not any("dangerously" in a or a.startswith("--allowedTools") for a in argv)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[]", "invalid_json"),
        (b'{"messages": []}', "invalid_request"),
        (b'{"messages": "hi"}', "invalid_request"),
        (b'{"messages": [{"role": "wizard", "content": "hi"}]}', "invalid_request"),
        (
            b'{"messages": [{"role": "user", "content": '
            b'[{"type": "image_url", "image_url": {"url": "x"}}]}]}',
            "unsupported_content",
        ),
        (b'{"messages": [{"role": "user", "content": "hi"}], "n": 3}', "unsupported_parameter"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', "invalid_request"),
        (b"[" * 50_000 + b"]" * 50_000, "invalid_json"),
    ],
)
def test_bad_requests_get_openai_style_400(shared: ProxyServer, body: bytes, code: str) -> None:
    with shared.http() as http:
        response = http.post("/v1/chat/completions", content=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"
    assert error["message"]


def test_unknown_route_and_method_are_openai_errors(shared: ProxyServer) -> None:
    with shared.http() as http:
        missing = http.get("/v1/nothing")
        wrong = http.get("/v1/chat/completions")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_health_is_cheap_and_informative(shared: ProxyServer) -> None:
    shared.assert_clean()  # an earlier test's CLI may still be exiting
    with shared.http() as http:  # start-up's version probe runs in the background
        assert wait_until(lambda: http.get("/health").json()["cli"]["version"], 30)
    shared.assert_clean()
    before = len(list(shared.pid_dir.iterdir()))
    with shared.http() as http:
        bodies = [http.get("/health").json() for _ in range(20)]
    assert len(list(shared.pid_dir.iterdir())) == before, "/health must not spawn a CLI"
    body = bodies[-1]
    # An earlier test of this module may have shown the CLI logged out: then /health
    # says so. Either way the status and the problems agree.
    assert body["status"] == ("degraded" if body["problems"] else "ok")
    assert all("not logged in" in problem for problem in body["problems"])
    assert body["backend"] in ("copilot", "claude")
    assert body["cli"]["found"] is True and body["cli"]["version"]
    assert body["uptime_seconds"] >= 0


# -- dedicated servers --------------------------------------------------------------------
# The slots, the missing CLI and the unexecutable CLI are the CLI backends' shared code
# (gateway limiter, CliBackend): one CLI each proves them.


def test_concurrency_cap_answers_429_with_retry_after(tmp_path: Path) -> None:
    proxy = start_server(tmp_path, fake_env("claude", MAX_CONCURRENT="1", MAX_QUEUE="0"))
    try:
        slow_done = threading.Event()

        def slow() -> None:
            proxy.client().chat.completions.create(
                model=default_model(proxy), messages=ask("FAKE_SLEEP=2\nslow")
            )
            slow_done.set()

        worker = threading.Thread(target=slow)
        worker.start()
        # the slow answer holds the only slot (start-up probes are CLI pids too)
        assert wait_until(
            lambda: httpx.get(proxy.url + "/health").json()["processes"]["active"] == 1, 10
        )
        with pytest.raises(openai.RateLimitError) as caught:
            proxy.client().chat.completions.create(model=default_model(proxy), messages=ask("fast"))
        assert int(caught.value.response.headers["retry-after"]) >= 1
        assert caught.value.body["code"] == "server_busy"  # type: ignore[index]
        worker.join(20)
        assert slow_done.is_set()
        # the slot is free again
        answer = proxy.client().chat.completions.create(
            model=default_model(proxy), messages=ask("again")
        )
        assert answer.choices[0].message.content == "echo: again"
    finally:
        proxy.stop()


def test_queued_requests_wait_for_a_slot(tmp_path: Path) -> None:
    proxy = start_server(tmp_path, fake_env("claude", MAX_CONCURRENT="2", MAX_QUEUE="10"))
    try:
        results: list[str] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            answer = proxy.client().chat.completions.create(
                model=default_model(proxy), messages=ask(f"FAKE_SLEEP=0.3\nq{i}")
            )
            with lock:
                results.append(answer.choices[0].message.content or "")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        peak = 0
        while any(t.is_alive() for t in threads):
            peak = max(peak, len(proxy.cli_pids()))
            time.sleep(0.02)
        assert sorted(results) == sorted(f"echo: q{i}" for i in range(6))
        assert peak <= 2  # one claude process per run
        proxy.assert_clean()
    finally:
        proxy.stop()


def test_missing_cli_is_503_and_models_fall_back(tmp_path: Path) -> None:
    proxy = start_server(tmp_path, fake_env("copilot", COPILOT_CLI_PATH="/nonexistent/copilot"))
    try:
        with proxy.http() as http:
            health = http.get("/health").json()
        assert health["status"] == "degraded" and health["cli"]["found"] is False
        assert [m.id for m in proxy.client().models.list()] == [default_model(proxy)]
        with pytest.raises(openai.APIStatusError) as caught:
            proxy.client().chat.completions.create(model=default_model(proxy), messages=ask("hi"))
        assert caught.value.status_code == 503
        assert caught.value.body["code"] == "cli_not_found"  # type: ignore[index]
    finally:
        proxy.stop()


def test_a_cli_that_is_not_executable_is_degraded_health_and_a_clear_503(
    tmp_path: Path,
) -> None:
    service = "claude"
    cli = tmp_path / "bin" / service
    cli.parent.mkdir()
    cli.write_bytes((FAKES / service).read_bytes())
    cli.chmod(0o644)  # found, but nobody may run it
    env = fake_env(service, COPILOT_CLI_PATH=str(cli), CLAUDE_CLI_PATH=str(cli))
    proxy = start_server(tmp_path, env)
    try:
        with proxy.http() as http:
            health = http.get("/health").json()
            chat = http.post("/v1/chat/completions", json={"messages": ask("hi")})
        assert health["status"] == "degraded"
        assert health["problems"] == [f"the {service} CLI at {cli} is not executable"]
        assert chat.status_code == 503
        assert chat.json()["error"]["code"] == "cli_not_found"
        assert "not executable" in chat.json()["error"]["message"]
    finally:
        proxy.stop()


def test_default_model_is_used_when_the_request_names_none(tmp_path: Path, service: str) -> None:
    model = "gpt-5.4" if service == "copilot" else "haiku"
    proxy = start_server(tmp_path, fake_env(service, DEFAULT_MODEL=model))
    try:
        with proxy.http() as http:
            response = http.post("/v1/chat/completions", json={"messages": ask("FAKE_INSPECT")})
        assert response.status_code == 200
        body = response.json()
        assert body["model"] == model
        argv = json.loads(body["choices"][0]["message"]["content"])["argv"]
        assert f"--model={model}" in argv
        assert proxy.client().models.list().data[0].id == model
    finally:
        proxy.stop()


def test_bad_setting_stops_startup_naming_the_variable(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "copilot_cli_proxy"],
        env={"PATH": "/usr/bin:/bin", "MAX_CONCURRENT": "lots", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "MAX_CONCURRENT" in result.stderr


# -- helpers ------------------------------------------------------------------------------


def is_copilot(proxy: ProxyServer) -> bool:
    return "copilot" in httpx.get(proxy.url + "/health").json()["backend"]


def default_model(proxy: ProxyServer) -> str:
    return "gpt-5-mini" if is_copilot(proxy) else "sonnet"


def prompt_seen(proxy: ProxyServer, seen: dict[str, object]) -> str:
    if not is_copilot(proxy):
        return str(seen["stdin"])
    prompts = [str(a) for a in seen["argv"] if str(a).startswith("--prompt=")]  # type: ignore[union-attr]
    assert len(prompts) == 1
    return prompts[0].removeprefix("--prompt=")
