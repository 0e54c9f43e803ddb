"""One server, both CLIs side by side, from a backends file: routing by model, aliases,
per-backend health, and a CLI child's environment read from the child itself."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.harness import FAKES, ProxyServer, ask, start_server, wait_until

API_KEY = "sk-server-key-5f1e"
BACKENDS = f"""
[[backend]]
id = "copilot"
kind = "copilot-cli"
runner = "persistent"
cli_path = "{FAKES / "copilot"}"
max_concurrent = 2
env = ["FAKE_CLI_PID_DIR", "TEAM_SETTING"]

[[backend]]
id = "claude"
kind = "claude-cli"
runner = "persistent"
cli_path = "{FAKES / "claude"}"
env = ["FAKE_CLI_PID_DIR"]

[aliases]
"gpt-4o" = "copilot/gpt-5-mini"
"claude-sonnet-4-5" = "claude/sonnet"
"""


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    tmp_path = tmp_path_factory.mktemp("backends")
    backends = tmp_path / "backends.toml"
    backends.write_text(BACKENDS)
    server = start_server(
        tmp_path,
        {
            "BACKENDS_FILE": str(backends),
            "API_KEY": API_KEY,
            "REQUEST_TIMEOUT": "20000",
            "SERVICE": "claude",  # ignored: the file says what runs
            "GH_TOKEN": "gho_copilot_only",
            "ANTHROPIC_API_KEY": "sk-ant-claude-only",
            "TEAM_SETTING": "for-copilot",
            "SOME_OTHER_SECRET": "nobody-gets-this",
        },
    )
    try:
        yield server
    finally:
        server.stop()


def client(server: ProxyServer) -> openai.OpenAI:
    return server.client(api_key=API_KEY)


def test_models_of_both_clis_are_listed_with_their_backend(both: ProxyServer) -> None:
    models = {m.id: m.owned_by for m in client(both).models.list()}
    assert models["gpt-5-mini"] == "copilot"
    assert models["copilot/gpt-5-mini"] == "copilot"
    assert models["sonnet"] == "claude"
    assert models["claude/sonnet"] == "claude"
    assert models["gpt-4o"] == "copilot"
    assert models["claude-sonnet-4-5"] == "claude"


def test_each_model_is_answered_by_its_cli_concurrently(both: ProxyServer) -> None:
    names = ["gpt-5-mini", "sonnet", "gpt-4o", "claude/sonnet", "copilot/gpt-5-mini"]

    def one(model: str) -> tuple[str, str]:
        reply = client(both).chat.completions.create(model=model, messages=ask(f"hi {model}"))
        return reply.model, reply.choices[0].message.content or ""

    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        answers = list(pool.map(one, names))
    assert [model for model, _ in answers] == names  # the name the client sent
    assert all(text == f"echo: hi {model}" for (model, text) in answers)


def test_request_logs_name_the_backend_that_answered(both: ProxyServer) -> None:
    client(both).chat.completions.create(model="claude-sonnet-4-5", messages=ask("which"))
    folder = both.log_path.parent / "logs" / "requests"

    def logged() -> bool:  # the record is written off the answer's path
        texts = [r.read_text() for r in folder.rglob("*.json")]
        return any('"backend": "claude"' in t and '"claude-sonnet-4-5"' in t for t in texts)

    assert wait_until(logged, 10)


def test_unknown_and_ambiguous_models_are_clear_errors(both: ProxyServer) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client(both).chat.completions.create(model="gpt-5-mni", messages=ask("x"))
    assert "gpt-5-mini" in str(missing.value)
    with pytest.raises(openai.NotFoundError):
        client(both).chat.completions.create(model="claude/gpt-5-mini", messages=ask("x"))


def test_health_lists_each_backend_with_its_state(both: ProxyServer) -> None:
    body = httpx.get(both.url + "/health").json()
    backends = {b["id"]: b for b in body["backends"]}
    assert set(backends) == {"copilot", "claude"}
    assert backends["copilot"]["kind"] == "copilot-cli"
    assert backends["copilot"]["slots"]["max_concurrent"] == 2
    assert backends["claude"]["state"] in ("ok", "degraded")


def child_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def cli_children(server: ProxyServer) -> dict[str, dict[str, str]]:
    """The environment of each live fake CLI, by which CLI it is."""
    found: dict[str, dict[str, str]] = {}
    for pid in server.cli_pids():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        name = "copilot" if "fakes/copilot" in cmdline else "claude"
        found[name] = child_environ(pid)
    return found


def test_a_cli_child_never_sees_the_servers_or_the_other_clis_secrets(
    both: ProxyServer,
) -> None:
    for model in ("gpt-5-mini", "sonnet"):
        client(both).chat.completions.create(model=model, messages=ask("warm"))
    assert wait_until(lambda: set(cli_children(both)) == {"copilot", "claude"}, 20)
    children = cli_children(both)
    for env in children.values():
        assert "API_KEY" not in env and API_KEY not in env.values()
        assert "SOME_OTHER_SECRET" not in env
        assert env["NO_COLOR"] == "1" and "PATH" in env
    copilot, claude = children["copilot"], children["claude"]
    assert copilot["GH_TOKEN"] == "gho_copilot_only" and "ANTHROPIC_API_KEY" not in copilot
    assert copilot["TEAM_SETTING"] == "for-copilot"
    assert claude["ANTHROPIC_API_KEY"] == "sk-ant-claude-only"
    assert "GH_TOKEN" not in claude and "TEAM_SETTING" not in claude


def test_a_broken_backends_file_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "backends.toml"
    bad.write_text('[[backend]]\nid = "x"\nkind = "copilot-cli"\nrunner = "sometimes"\n')
    with pytest.raises(RuntimeError) as caught:
        start_server(tmp_path, {"BACKENDS_FILE": str(bad)}, ready_timeout=20)
    assert f"{bad}: [[backend]] #1 (id 'x'): key 'runner' must be one of" in str(caught.value)
