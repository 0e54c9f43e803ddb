"""Contract tests against the REAL copilot and claude binaries from npm, without a login.

What they can show without a login: our argv is accepted by their parsers (a bad flag
fails before the auth check), tools are really off (claude's init line lists them),
model discovery parses their real output, and their real not-logged-in result
becomes a clear error for the API client. CI installs the binaries; these tests
fail (not skip) in CI when the binaries are missing.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import openai
import pytest

from copilot_cli_proxy.backends.claude_cli import (
    ClaudeCliBackend,
    ClaudeOutputParser,
    build_claude_argv,
)
from copilot_cli_proxy.backends.copilot_cli import (
    CopilotCliBackend,
    CopilotOutputParser,
    build_copilot_argv,
)
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.settings import Settings
from tests.e2e.harness import ProxyServer, start_server
from tests.e2e.harness import require_real_cli as require

pytestmark = pytest.mark.real_cli

# Credentials the machine might carry must not turn "not logged in" into a real call.
CREDENTIAL_VARS = (
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "COPILOT_GITHUB_TOKEN",
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_OAUTH_TOKEN",
)
PARSER_ERRORS = (
    "error: unexpected argument",
    "error: invalid value",
    "error: Invalid command format",
    "error: unknown option",
    "is invalid. Allowed choices",
    "error: a value is required",
    "Input must be provided",
    "Error: When using --print",
)


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One empty HOME for the module: copilot unpacks itself there once (~5 s)."""
    return tmp_path_factory.mktemp("home")


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    env["HOME"] = str(home)
    env.pop("XDG_CACHE_HOME", None)
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("COPILOT_HOME", None)
    env.pop("CLAUDE_CONFIG_DIR", None)
    return env


def run(
    argv: list[str], home: Path, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=cwd,
        env=clean_env(home),
        start_new_session=True,
    )


def assert_reached_auth(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert not any(marker in output for marker in PARSER_ERRORS), output
    assert result.returncode == 1, output


# -- copilot ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "tools", "effort"),
    [
        ("Say hi", (), None),
        ("--allow-all-tools -p --yolo", (), "low"),
        ("-weird prompt\nwith lines", ("shell(git:*)", "write"), "high"),
    ],
)
def test_copilot_accepts_our_argv(
    cli_home: Path, tmp_path: Path, prompt: str, tools: tuple[str, ...], effort: str | None
) -> None:
    cli = require("copilot")
    argv = build_copilot_argv(
        cli,
        prompt=prompt,
        model="gpt-5-mini",
        usage_file=tmp_path / "usage.json",
        allowed_tools=tools,
        reasoning_effort=effort,
    )
    result = run(argv, cli_home, tmp_path)
    assert_reached_auth(result)
    assert "No authentication information found" in result.stderr
    parser = CopilotOutputParser()
    with pytest.raises(ProxyError) as caught:
        for line in result.stdout.splitlines():
            parser.feed(json.loads(line))
        parser.finish(result.returncode, result.stderr, tmp_path)
    assert caught.value.code == "cli_not_logged_in"


def test_copilot_rejects_what_our_argv_guards_against(cli_home: Path, tmp_path: Path) -> None:
    """The trap is real: the short form turns a prompt starting with '-' into a flag."""
    cli = require("copilot")
    result = run([cli, "-p", "-weird", "--output-format=json"], cli_home, tmp_path)
    assert "a value is required for '--prompt <text>'" in result.stderr


def test_copilot_model_discovery_parses_the_real_output(cli_home: Path, tmp_path: Path) -> None:
    cli = require("copilot")
    settings = Settings(copilot_cli_path=cli, temp_dir_base=str(tmp_path / "t"))
    backend = CopilotCliBackend(settings)
    with patched_home(cli_home):
        models = anyio.run(backend.list_models)
    ids = [m.id for m in models]
    assert ids[0] == "gpt-5-mini"
    assert len(ids) >= 20
    assert {"claude-sonnet-4.6", "gpt-5.4"} <= set(ids)
    assert backend.catalog.last_error is None


# -- claude -------------------------------------------------------------------------------


def claude_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("stdin", ["Say hi", "--dangerously-skip-permissions -p --tools default"])
def test_claude_accepts_our_argv_and_runs_without_tools(
    cli_home: Path, tmp_path: Path, stdin: str
) -> None:
    cli = require("claude")
    system_file = tmp_path / "system-prompt.md"
    system_file.write_text("Answer briefly. 간단히 답하세요 🎉", encoding="utf-8")
    argv = build_claude_argv(cli, model="sonnet", system_prompt_file=system_file)
    result = run(argv, cli_home, tmp_path, stdin=stdin)
    assert_reached_auth(result)
    lines = claude_lines(result)
    init = next(
        line for line in lines if line.get("type") == "system" and line.get("subtype") == "init"
    )
    assert init["tools"] == [], "no built-in tool may be available to an API client"
    assert init["mcp_servers"] == []
    assert init["permissionMode"] == "dontAsk"
    assert init["cwd"] == str(tmp_path)
    parser = ClaudeOutputParser()
    with pytest.raises(ProxyError) as caught:
        for line in lines:
            parser.feed(line)
    assert caught.value.code == "cli_not_logged_in"


def test_claude_with_operator_tools_lists_only_those(cli_home: Path, tmp_path: Path) -> None:
    cli = require("claude")
    system_file = tmp_path / "system-prompt.md"
    system_file.write_text("", encoding="utf-8")
    argv = build_claude_argv(
        cli,
        model="haiku",
        system_prompt_file=system_file,
        allowed_tools=("Read", "Grep"),
        effort="low",
    )
    result = run(argv, cli_home, tmp_path, stdin="hi")
    assert_reached_auth(result)
    init = next(line for line in claude_lines(result) if line.get("subtype") == "init")
    assert sorted(init["tools"]) == ["Grep", "Read"]  # type: ignore[arg-type]


def test_claude_model_discovery_parses_the_real_initialize_reply(
    cli_home: Path, tmp_path: Path
) -> None:
    cli = require("claude")
    backend = ClaudeCliBackend(
        Settings(service="claude", claude_cli_path=cli, temp_dir_base=str(tmp_path / "t"))
    )
    with patched_home(cli_home):
        models = anyio.run(backend.list_models)
    ids = [m.id for m in models]
    assert ids[0] == "sonnet"
    assert {"default", "sonnet", "haiku"} <= set(ids)
    assert backend.catalog.last_error is None
    # the resolved full names are accepted too
    resolved = next(m for m in models if m.id == "haiku").aliases
    assert resolved and resolved[0].startswith("claude-haiku")


# -- the server over the real CLIs ----------------------------------------------------------


def serve_real_cli(
    service: str, runner: str, tmp_path: Path, cli_home: Path
) -> Iterator[tuple[str, ProxyServer]]:
    """The server over the real ``service`` CLI with a clean HOME, for one runner."""
    env = clean_env(cli_home)
    env.update(
        {
            "SERVICE": service,
            f"{service.upper()}_CLI_PATH": require(service),
            "RUNNER": runner,
            "REQUEST_TIMEOUT": "90000",
        }
    )
    with patched_environ(env):
        proxy = start_server(tmp_path, {})
    try:
        yield service, proxy
    finally:
        proxy.stop()


@pytest.fixture(params=["copilot", "claude"])
def real_server(
    request: pytest.FixtureRequest, tmp_path: Path, cli_home: Path
) -> Iterator[tuple[str, ProxyServer]]:
    yield from serve_real_cli(str(request.param), "oneshot", tmp_path, cli_home)


def test_server_over_real_cli_lists_real_models_and_says_log_in(
    real_server: tuple[str, ProxyServer],
) -> None:
    service, proxy = real_server
    client = proxy.client(timeout=120.0)
    ids = [m.id for m in client.models.list()]
    assert len(ids) > 1, "the model list must come from the real CLI, not the fallback"
    assert ("claude-sonnet-4.6" if service == "copilot" else "haiku") in ids
    # Both forms on one server: a server start over the real CLI costs seconds.
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            result = client.chat.completions.create(
                model=ids[0], messages=[{"role": "user", "content": "Say hi"}], stream=stream
            )
            if stream:
                list(result)
        assert caught.value.status_code == 503
        body = caught.value.body
        assert isinstance(body, dict) and body["code"] == "cli_not_logged_in"
        assert "login" in body["message"] and service in body["message"]
        assert not proxy.request_dirs()


# -- helpers ------------------------------------------------------------------------------


class patched_environ:
    """Temporarily replace os.environ (the server subprocess and backends inherit it)."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self._saved: dict[str, str] = {}

    def __enter__(self) -> None:
        self._saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self._env)

    def __exit__(self, *exc: object) -> None:
        os.environ.clear()
        os.environ.update(self._saved)


def patched_home(home: Path) -> patched_environ:
    return patched_environ(clean_env(home))


# -- long-lived modes (RUNNER=persistent) ---------------------------------------------------


def test_copilot_headless_session_has_no_tools_and_reports_not_logged_in(
    cli_home: Path, tmp_path: Path
) -> None:
    """Our headless argv and session.create params, against the real JSON-RPC server."""
    from copilot_cli_proxy.backends.copilot_headless import (
        HeadlessCopilot,
        build_headless_argv,
        session_create_params,
    )
    from copilot_cli_proxy.runtime.process import CliRun

    cli = require("copilot")
    workdir = tmp_path / "work"
    workdir.mkdir()

    async def scenario() -> tuple[list[dict[str, object]], object, object]:
        argv = build_headless_argv(cli)
        run = await CliRun.start(argv, cwd=tmp_path, env=clean_env(cli_home), keep_stdin=True)
        process = HeadlessCopilot(run, argv, ())
        async with anyio.create_task_group() as tg:
            tg.start_soon(process.serve, tg)
            await process.connect()
            params = session_create_params(
                model="gpt-5-mini",
                workdir=workdir,
                system="Be brief.",
                allowed_tools=(),
                reasoning_effort="low",
            )
            session_id, events = await process.open_session(params)
            await process.peer.request(
                "session.send", {"sessionId": session_id, "prompt": "Say hi"}
            )
            seen: list[dict[str, object]] = []
            with events, anyio.fail_after(60):
                async for event in events:
                    assert isinstance(event, dict)
                    seen.append(event)
                    if event.get("type") == "session.idle":
                        break
            await process.close_session(session_id, abort=False)
            listed = await process.peer.request("session.list", {})
            status = await process.peer.request("auth.getStatus", {})
            await process.stop()
        return seen, listed, status

    seen, listed, status = anyio.run(scenario)
    info = [e for e in seen if e.get("type") == "session.info"]
    disabled = " ".join(str(e.get("data")) for e in info)
    for tool in ("bash", "edit", "create", "view", "web_fetch"):
        assert tool in disabled, f"{tool} must be disabled for an API session: {disabled}"
    parser = CopilotOutputParser()
    with pytest.raises(ProxyError) as caught:
        for event in seen:
            parser.feed(event)
    assert caught.value.code == "cli_not_logged_in"
    assert listed == {"sessions": []}, "the session must be deleted afterwards"
    assert status["isAuthenticated"] is False  # type: ignore[index]


def test_claude_warm_process_has_no_tools_and_its_own_config_dir(tmp_path: Path) -> None:
    from copilot_cli_proxy.backends.claude_cli import claude_env
    from copilot_cli_proxy.backends.claude_warm import WarmClaude, WarmKey, user_message_line

    cli = require("claude")
    cli_home = tmp_path / "home"  # untouched by other tests: nothing may appear in it
    cli_home.mkdir()

    async def scenario() -> tuple[list[dict[str, object]], list[str], bool]:
        with patched_home(cli_home):
            process = await WarmClaude.spawn(
                cli, WarmKey("haiku", "Be brief. 🎉", None), tmp_path / "req", (), claude_env()
            )
        # Idle longer than the 3 s after which claude gives up on a silent stdin in
        # text mode: the stream-json input mode a warm process uses must wait.
        await anyio.sleep(4.0)
        assert process.alive
        await process.run.write_stdin(
            user_message_line("--dangerously-skip-permissions hi"), close=True
        )
        with anyio.fail_after(60):
            lines = [json.loads(line) async for line in process.run.lines()]
        config_files = sorted(p.name for p in (process.root / "config").iterdir())
        await process.aclose()
        return lines, config_files, process.root.exists()

    lines, config_files, root_left = anyio.run(scenario)
    init = next(line for line in lines if line.get("subtype") == "init")
    assert init["tools"] == [] and init["mcp_servers"] == [] and init["permissionMode"] == "dontAsk"
    assert ".claude.json" in config_files, "claude's state goes to the per-process config dir"
    assert not (cli_home / ".claude.json").exists(), "never the shared ~/.claude.json"
    assert not root_left
    parser = ClaudeOutputParser()
    with pytest.raises(ProxyError) as caught:
        for line in lines:
            parser.feed(line)
    assert caught.value.code == "cli_not_logged_in"


@pytest.fixture(params=["copilot", "claude"])
def real_persistent_server(
    request: pytest.FixtureRequest, tmp_path: Path, cli_home: Path
) -> Iterator[tuple[str, ProxyServer]]:
    yield from serve_real_cli(str(request.param), "persistent", tmp_path, cli_home)


def test_persistent_server_over_real_cli_says_log_in(
    real_persistent_server: tuple[str, ProxyServer],
) -> None:
    _, proxy = real_persistent_server
    client = proxy.client(timeout=120.0)
    for stream in (False, True, False):
        with pytest.raises(openai.APIStatusError) as caught:
            result = client.chat.completions.create(
                model=client.models.list().data[0].id,
                messages=[
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Say hi"},
                ],
                stream=stream,
            )
            if stream:
                list(result)
        assert caught.value.status_code == 503
        assert caught.value.body["code"] == "cli_not_logged_in"  # type: ignore[index]
    import httpx

    health = httpx.get(proxy.url + "/health").json()
    assert health["runner"] == "persistent"
