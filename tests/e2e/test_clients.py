"""The clients the README's "Works with" table names, each driven against the real server
over the fake copilot CLI: one non-streamed and one streamed chat each, in a process of
its own (the JavaScript ones under node).

What each client shows is its own view (content, finish reason, token usage); the
server's request logs show that it really sent one streamed and one non-streamed
request. The fake CLI answers ``echo: <question>`` in several deltas.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ROOT, ProxyServer, fake_env, start_server, wait_until
from tests.e2e.needs import missing, tool

CLIENTS_DIR = ROOT / "tests" / "clients"
MODEL = "gpt-5-mini"  # the fake copilot's default, one of the ids /v1/models lists
RUN_TIMEOUT_S = 100.0  # litellm alone takes ~10 s of CPU to import


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    server = start_server(tmp_path_factory.mktemp("clients"), fake_env("copilot"))
    try:
        yield server
    finally:
        server.stop()


def request_logs(server: ProxyServer) -> list[dict[str, Any]]:
    """The chat requests' logs (one JSON file each), oldest first."""
    logs = server.temp_base.parent / "logs" / "requests"
    found = [json.loads(path.read_text()) for path in logs.glob("*/*.json")]
    chats = [log for log in found if log["path"] == "/v1/chat/completions"]
    return sorted(chats, key=lambda log: str(log["timestamp"]))


def run_client(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=CLIENTS_DIR,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"{argv[:3]} failed:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def assert_two_chats(server: ProxyServer, before: int) -> None:
    """The server served exactly one non-streamed and one streamed chat since ``before``."""
    assert wait_until(lambda: len(request_logs(server)) >= before + 2, 10.0)
    new = request_logs(server)[before:]
    assert sorted((log["stream"], log["status"], log["model"]) for log in new) == [
        (False, 200, MODEL),
        (True, 200, MODEL),
    ], new


def assert_answers(result: dict[str, Any], question: str) -> None:
    for mode in ("plain", "stream"):
        got = result[mode]
        assert got["content"] == f"echo: {question}", (mode, got)
        assert got["finish_reason"] == "stop", (mode, got)
    # The answer arrived in pieces, not as one block at the end.
    assert result["stream"]["pieces"] > 1, result


@pytest.mark.parametrize("client", ["openai", "langchain", "litellm"])
def test_python_client_chats(proxy: ProxyServer, client: str) -> None:
    module = {"openai": "openai", "langchain": "langchain_openai", "litellm": "litellm"}[client]
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    if probe.returncode != 0:
        missing(f"{module} is not installed (pip install -e '.[dev]')")
    before = len(request_logs(proxy))
    question = f"hello from {client}"
    result = run_client(
        [
            sys.executable,
            str(CLIENTS_DIR / "python_clients.py"),
            client,
            proxy.base_url,
            MODEL,
            question,
        ]
    )
    assert_answers(result, question)
    # Usage reaches the client in both modes (LangChain only with stream_usage=True).
    assert result["plain"]["total_tokens"] > 0 and result["stream"]["total_tokens"] > 0, result
    assert_two_chats(proxy, before)


def node_clients() -> str:
    node = tool("node", "Node.js 20+")
    if not (CLIENTS_DIR / "node_modules" / "openai").is_dir():
        missing("tests/clients/node_modules is missing (scripts/setup.sh --dev installs it)")
    return node


@pytest.mark.parametrize("client", ["openai", "ai-sdk"])
def test_node_client_chats(proxy: ProxyServer, client: str) -> None:
    node = node_clients()
    question = f"hello from {client} under node"
    before = len(request_logs(proxy))
    result = {
        mode: run_client(
            [
                node,
                str(CLIENTS_DIR / "node_clients.mjs"),
                client,
                mode,
                proxy.base_url,
                MODEL,
                question,
            ]
        )
        for mode in ("plain", "stream")
    }
    assert_answers(result, question)
    usage = [result[mode]["usage"] for mode in ("plain", "stream")]
    key = "total_tokens" if client == "openai" else "totalTokens"
    assert all(u[key] > 0 for u in usage), usage
    assert_two_chats(proxy, before)


def test_llm_cli_chats(proxy: ProxyServer, tmp_path: Path) -> None:
    llm = tool("llm", "pip install -e '.[dev]'")
    # llm learns an OpenAI-compatible server from extra-openai-models.yaml in its
    # user dir: its own id for the model, the id to send, and the base URL.
    (tmp_path / "extra-openai-models.yaml").write_text(
        f'- model_id: proxy\n  model_name: {MODEL}\n  api_base: "{proxy.base_url}"\n'
    )
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path), "OPENAI_API_KEY": "unused"}
    before = len(request_logs(proxy))
    answers = [
        subprocess.run(
            [llm, "-m", "proxy", *flags, question],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            env=env,
        )
        for flags, question in (([], "streamed by llm"), (["--no-stream"], "whole from llm"))
    ]
    assert [(a.returncode, a.stdout) for a in answers] == [
        (0, "echo: streamed by llm\n"),
        (0, "echo: whole from llm\n"),
    ], [a.stderr for a in answers]
    assert_two_chats(proxy, before)
