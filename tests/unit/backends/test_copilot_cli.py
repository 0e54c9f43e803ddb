from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from copilot_cli_proxy.backends.base import BackendEvent, Finish, TextDelta, Usage
from copilot_cli_proxy.backends.cli_backend import parse_json_line
from copilot_cli_proxy.backends.copilot_cli import (
    DENY_ALL_TOOLS,
    MAX_ARG_BYTES,
    NO_TOOL,
    PROMPT_FLAG,
    CopilotCliBackend,
    build_copilot_argv,
    prompt_arg_fits,
    redact_argv,
)
from copilot_cli_proxy.backends.copilot_output import (
    USAGE_FILE,
    CopilotOutputParser,
    parse_config_help_models,
    parse_help_choices_models,
    usage_from_metrics,
)
from copilot_cli_proxy.backends.prompt import CliPrompt
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.requests import ChatRequest, Message
from copilot_cli_proxy.settings import Settings

DATA = Path(__file__).resolve().parents[1] / "data" / "cli"
CONTRACT_CONFIG_IDS = [
    "claude-sonnet-5.5", "claude-sonnet-5", "claude-fable-5.1", "claude-fable-5",
    "claude-opus-5.5", "claude-opus-5", "claude-opus-4.8", "claude-opus-4.8-fast",
    "claude-sonnet-4.6", "claude-haiku-5.5", "claude-haiku-4.5", "gpt-6.1-sol", "gpt-6-sol",
    "gpt-6-luna", "gpt-6-astra", "gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.6-luna", "gpt-5.5",
    "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex", "gpt-5-mini", "mai-code-1.1-flash",
    "gemini-4-argon", "gemini-3.8-flash", "gemini-3.7-flash", "grok-4.7", "grok-4.6",
    "grok-4.5", "kimi-k3",
]  # fmt: skip
FORBIDDEN_FLAGS = (
    "--allow-all-tools",
    "--allow-all",
    "--yolo",
    "--allow-all-paths",
    "--allow-all-urls",
)
HOSTILE_PROMPTS = [
    "Say hi",
    "--allow-all-tools",
    "--yolo",
    "-p",
    "-",
    "--",
    "-weird prompt",
    "--model=gpt-6-sol --allow-all",
    "line one\nline two\n--allow-all-paths",
    "",
    " ",
    "$(rm -rf ~) `id` ; | & > /etc/passwd",
    "안녕하세요 你好 😀",
    "'\"\\",
]


def argv_for(prompt: str, **kwargs: Any) -> list[str]:
    return build_copilot_argv(
        "/opt/copilot",
        prompt=prompt,
        model="gpt-5-mini",
        usage_file=Path("/w/usage.json"),
        **kwargs,
    )


# -- argv -----------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", HOSTILE_PROMPTS)
def test_prompt_is_exactly_one_prompt_equals_element(prompt: str) -> None:
    argv = argv_for(prompt)
    prompt_args = [a for a in argv if a.startswith(PROMPT_FLAG)]
    assert prompt_args == [PROMPT_FLAG + prompt]
    assert argv[0] == "/opt/copilot"
    assert "-p" not in argv
    assert "--prompt" not in argv


@pytest.mark.parametrize("prompt", HOSTILE_PROMPTS)
@pytest.mark.parametrize("tools", [(), ("shell",), ("shell(git:*)", "write")])
def test_no_allow_all_flag_ever(prompt: str, tools: tuple[str, ...]) -> None:
    argv = argv_for(prompt, allowed_tools=tools)
    for flag in FORBIDDEN_FLAGS:
        assert flag not in argv
        assert not any(a.startswith(flag + "=") for a in argv)


@pytest.mark.parametrize("prompt", HOSTILE_PROMPTS)
def test_every_other_element_is_a_flag_with_its_value_attached(prompt: str) -> None:
    for arg in argv_for(prompt, allowed_tools=("shell",), reasoning_effort="high")[1:]:
        assert arg.startswith("--")
        if arg.startswith(PROMPT_FLAG):
            continue
        assert "\n" not in arg


def test_no_tools_allowed_names_no_real_tool_and_denies_shell_write_and_url() -> None:
    """Regression: the deny rules alone left the real CLI's model 17 tools, among them
    session_store_sql (every past conversation); an empty --available-tools= changes
    nothing, a name that matches no tool leaves none (proven in
    tests/e2e/test_real_copilot_security.py)."""
    argv = argv_for("hi")
    for deny in ("--deny-tool=shell", "--deny-tool=write", "--deny-tool=url"):
        assert deny in argv
    assert set(DENY_ALL_TOOLS) <= set(argv)
    assert [a for a in argv if a.startswith("--available-tools")] == [
        f"--available-tools={NO_TOOL}"
    ]
    assert NO_TOOL and "," not in NO_TOOL
    assert not any(a.startswith("--allow-tool") for a in argv)


def test_allowed_tools_are_listed_and_nothing_denied() -> None:
    argv = argv_for("hi", allowed_tools=("shell(git:*)", "write"))
    assert "--allow-tool=shell(git:*)" in argv
    assert "--allow-tool=write" in argv
    assert "--available-tools=shell(git:*)" in argv
    assert "--available-tools=write" in argv
    assert not any(a.startswith("--deny-tool") for a in argv)


def test_fixed_options() -> None:
    argv = argv_for("hi")
    for option in (
        "--output-format=json",
        "--stream=on",
        "--model=gpt-5-mini",
        "--no-auto-update",
        "--no-ask-user",
        "--usage-output-file=/w/usage.json",
    ):
        assert option in argv
    assert not any(a.startswith("--reasoning-effort") for a in argv)


def test_reasoning_effort() -> None:
    assert "--reasoning-effort=high" in argv_for("hi", reasoning_effort="high")


def test_redacted_argv_hides_the_prompt_but_keeps_its_size() -> None:
    argv = argv_for("a secret 😀")
    redacted = redact_argv(argv)
    assert "--prompt=<10 chars>" in redacted
    assert not any("secret" in a for a in redacted)
    assert [a for a in redacted if not a.startswith(PROMPT_FLAG)] == [
        a for a in argv if not a.startswith(PROMPT_FLAG)
    ]


# -- the 128 KiB argument limit ----------------------------------------------------------------

LIMIT = MAX_ARG_BYTES - len(PROMPT_FLAG) - 1  # bytes of prompt that fit with the NUL


def test_limit_is_linux_max_arg_strlen() -> None:
    assert MAX_ARG_BYTES == 128 * 1024
    assert LIMIT == 131062


@pytest.mark.parametrize(
    ("prompt", "fits"),
    [
        ("", True),
        ("a" * LIMIT, True),
        ("a" * (LIMIT + 1), False),
        ("한" * (LIMIT // 3), True),  # 131061 bytes
        ("한" * (LIMIT // 3) + "a", True),  # 131062 bytes
        ("한" * (LIMIT // 3 + 1), False),  # 131064 bytes
        ("😀" * (LIMIT // 4) + "ab", True),  # 131060 + 2
        ("😀" * (LIMIT // 4) + "abc", False),
        ("😀" * (LIMIT // 4 + 1), False),
        ("é" * (LIMIT // 2), True),
        ("é" * (LIMIT // 2) + "x", False),
    ],
)
def test_prompt_arg_fits_at_the_boundary(prompt: str, fits: bool) -> None:
    assert prompt_arg_fits(prompt) is fits


def test_counted_in_bytes_not_characters() -> None:
    assert prompt_arg_fits("a" * 50_000)
    assert not prompt_arg_fits("😀" * 50_000)


@pytest.mark.parametrize("extra", [0, 1])
def test_the_kernel_agrees_with_prompt_arg_fits(extra: int) -> None:
    prompt = "a" * (LIMIT + extra)
    argv = ["/bin/sh", "-c", "exit 0", "sh", PROMPT_FLAG + prompt]
    if prompt_arg_fits(prompt):
        assert subprocess.run(argv, check=False).returncode == 0
    else:
        with pytest.raises(OSError) as caught:
            subprocess.run(argv, check=False)
        assert caught.value.errno == 7  # E2BIG


def chat(content: str) -> ChatRequest:
    return ChatRequest(model="gpt-5-mini", messages=(Message(role="user", content=content),))


def backend() -> CopilotCliBackend:
    return CopilotCliBackend(Settings(copilot_cli_path="/nonexistent/copilot"))


def test_check_request_refuses_a_prompt_too_large_for_argv_with_413() -> None:
    with pytest.raises(ProxyError) as caught:
        backend().check_request(chat("한" * (LIMIT // 3 + 1)))
    assert (caught.value.code, caught.value.status, caught.value.param) == (
        "prompt_too_large",
        413,
        "messages",
    )
    assert "131064 bytes" in caught.value.message


def test_check_request_accepts_a_prompt_at_the_limit() -> None:
    backend().check_request(chat("a" * LIMIT))


def test_check_request_refuses_a_nul_character_with_400() -> None:
    # A NUL cannot be part of an argv string: spawning would fail with ValueError (a 500).
    with pytest.raises(ProxyError) as caught:
        backend().check_request(chat("before\x00after"))
    assert (caught.value.code, caught.value.status, caught.value.param) == (
        "invalid_request",
        400,
        "messages",
    )


def test_prepare_writes_the_system_text_to_agents_md(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "operator"))
    request = chat("hi")
    invocation = backend().prepare(
        tmp_path, CliPrompt(system="Be brief. 😀", prompt="hi"), "gpt-5-mini", request, "/c"
    )
    assert invocation.cwd == tmp_path / "work"
    assert (tmp_path / "work" / "AGENTS.md").read_text("utf-8") == "Be brief. 😀"
    assert invocation.stdin is None
    assert PROMPT_FLAG + "hi" in invocation.argv
    assert f"--usage-output-file={tmp_path / USAGE_FILE}" in invocation.argv
    assert "--prompt=<2 chars>" in invocation.redacted_argv


def test_prepare_isolates_the_run_from_the_operators_copilot_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: runs kept every conversation in ~/.copilot (session-state/ and
    session-store.db) and read instructions from it and from every parent up to a git
    root, and from COPILOT_CUSTOM_INSTRUCTIONS_DIRS."""
    operator = tmp_path / "operator"
    (operator / ".copilot").mkdir(parents=True)
    (operator / ".copilot" / "config.json").write_text('{"loggedInUsers": [1]}')
    monkeypatch.setenv("HOME", str(operator))
    monkeypatch.delenv("COPILOT_HOME", raising=False)
    monkeypatch.setenv("COPILOT_CUSTOM_INSTRUCTIONS_DIRS", str(tmp_path / "planted"))
    monkeypatch.setenv("COPILOT_ALLOW_ALL", "true")
    workdir = tmp_path / "req-1"
    workdir.mkdir()
    invocation = backend().prepare(
        workdir, CliPrompt(system="", prompt="hi"), "gpt-5-mini", chat("hi"), "/c"
    )
    env = dict(invocation.env or {})
    home = workdir / "home"
    assert env["COPILOT_HOME"] == str(home)
    assert "COPILOT_CUSTOM_INSTRUCTIONS_DIRS" not in env and "COPILOT_ALLOW_ALL" not in env
    assert (home / "config.json").read_text() == '{"loggedInUsers": [1]}'
    assert (home / "session-store.db").is_dir()
    assert (workdir / "work" / ".git" / "HEAD").is_file()
    assert not (workdir / "work" / "AGENTS.md").exists(), "no system text, no file"
    assert sorted(p.name for p in (operator / ".copilot").iterdir()) == ["config.json"]


# -- output parsing ---------------------------------------------------------------------------


def event(kind: str, **data: Any) -> bytes:
    """One line as ``copilot -p --output-format json`` writes it."""
    return json.dumps(
        {
            "type": kind,
            "data": data,
            "id": str(uuid.uuid4()),
            "timestamp": "2026-11-22T03:00:00.000Z",
            "parentId": None,
        }
    ).encode()


def result_line(exit_code: int = 0, **extra: Any) -> bytes:
    body = {
        "type": "result",
        "timestamp": "2026-11-22T03:00:01.000Z",
        "sessionId": "5d1c0a57-0000-4000-8000-000000000000",
        "exitCode": exit_code,
        "usage": {
            "premiumRequests": 1,
            "totalApiDurationMs": 812,
            "sessionDurationMs": 1400,
            "codeChanges": {"linesAdded": 0, "linesRemoved": 0, "filesModified": []},
        },
    }
    body.update(extra)
    return json.dumps(body).encode()


def drive(
    lines: list[bytes], workdir: Path, exit_code: int = 0, stderr: str = ""
) -> list[BackendEvent]:
    parser = CopilotOutputParser()
    events: list[BackendEvent] = []
    for line in lines:
        obj = parse_json_line(line)
        if obj is None:
            parser.feed_text(line.decode("utf-8", "replace"))
            continue
        events.extend(parser.feed(obj))
    events.extend(parser.finish(exit_code, stderr, workdir))
    return events


def text_of(events: list[BackendEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def streamed_answer(message_id: str = "m1", output_tokens: int = 7) -> list[bytes]:
    return [
        event("user.message", content="Say hi", attachments=[]),
        event("assistant.turn_start", turnId="0"),
        event("assistant.reasoning_delta", reasoningId="r1", deltaContent="thinking…"),
        event("assistant.message_delta", messageId=message_id, deltaContent="Hel"),
        event("assistant.message_delta", messageId=message_id, deltaContent="lo 😀"),
        event(
            "assistant.message",
            messageId=message_id,
            content="Hello 😀",
            toolRequests=[],
            outputTokens=output_tokens,
            model="gpt-5-mini",
        ),
        event("assistant.turn_end", turnId="0"),
        result_line(),
    ]


def test_streamed_deltas_then_the_final_message_is_not_duplicated(tmp_path: Path) -> None:
    events = drive(streamed_answer(), tmp_path)
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("Hel"), TextDelta("lo 😀")]
    assert events[-1] == Finish("stop")
    assert events[-2] == Usage(prompt_tokens=None, completion_tokens=7)


def test_output_tokens_only_never_invents_a_prompt_count(tmp_path: Path) -> None:
    usage = drive(streamed_answer(output_tokens=3), tmp_path)[-2]
    assert isinstance(usage, Usage)
    assert usage.prompt_tokens is None
    assert usage.completion_tokens == 3
    assert usage.total_tokens is None


def test_no_token_counts_at_all_gives_an_all_unknown_usage(tmp_path: Path) -> None:
    lines = [event("assistant.message", messageId="m", content="Hi"), result_line()]
    events = drive(lines, tmp_path)
    assert events == [TextDelta("Hi"), Usage(), Finish("stop")]


def test_message_without_deltas_is_the_answer(tmp_path: Path) -> None:
    lines = [
        event("assistant.message", messageId="m1", content="Whole answer", outputTokens=2),
        result_line(),
    ]
    assert text_of(drive(lines, tmp_path)) == "Whole answer"


def test_output_tokens_of_several_messages_are_summed(tmp_path: Path) -> None:
    lines = [
        event("assistant.message_delta", messageId="m1", deltaContent="A"),
        event("assistant.message", messageId="m1", content="A", outputTokens=2),
        event("tool.execution_start", toolCallId="t1", toolName="view"),
        event("tool.execution_complete", toolCallId="t1", success=True),
        event("assistant.message", messageId="m2", content="B", outputTokens=5),
        result_line(),
    ]
    events = drive(lines, tmp_path)
    assert text_of(events) == "AB"
    assert events[-2] == Usage(completion_tokens=7)


def test_reasoning_and_unknown_events_are_not_the_answer(tmp_path: Path) -> None:
    lines = [
        event("assistant.reasoning_delta", reasoningId="r", deltaContent="secret thoughts"),
        event("session.some_future_event", x=1),
        json.dumps({"type": "assistant.message_delta", "data": "not an object"}).encode(),
        event("assistant.message_delta", messageId="m", deltaContent=""),
        event("assistant.message_delta", messageId="m", deltaContent=None),
        event("assistant.message_delta", messageId="m", deltaContent="ok"),
        event("assistant.message", messageId="m", content="ok"),
        result_line(),
    ]
    assert text_of(drive(lines, tmp_path)) == "ok"


def test_non_json_noise_on_stdout_is_ignored(tmp_path: Path) -> None:
    lines = [b"Package extraction took 5123ms", *streamed_answer(), b"\x1b[0m"]
    assert text_of(drive(lines, tmp_path)) == "Hello 😀"


def metrics_file(workdir: Path, metrics: Any) -> None:
    (workdir / USAGE_FILE).write_text(json.dumps(metrics), encoding="utf-8")


def test_usage_from_the_usage_output_file(tmp_path: Path) -> None:
    metrics_file(
        tmp_path,
        {
            "totalPremiumRequestCost": 1,
            "totalNanoAiu": 0,
            "totalApiDurationMs": 812,
            "modelMetrics": {
                "gpt-5-mini": {
                    "requests": {"count": 1, "cost": 1},
                    "usage": {
                        "inputTokens": 1200,
                        "outputTokens": 7,
                        "cacheReadTokens": 1000,
                        "cacheWriteTokens": 0,
                        "reasoningTokens": 3,
                    },
                }
            },
            "lastCallInputTokens": 1200,
            "lastCallOutputTokens": 7,
        },
    )
    events = drive(streamed_answer(output_tokens=7), tmp_path)
    assert events[-2] == Usage(
        prompt_tokens=1200, completion_tokens=7, cached_prompt_tokens=1000, reasoning_tokens=3
    )


@pytest.mark.parametrize(
    "content",
    ["", "{not json", "[1, 2]", "null", '"text"', '{"modelMetrics": []}', '{"modelMetrics": {}}'],
)
def test_a_useless_usage_file_falls_back_to_output_tokens(tmp_path: Path, content: str) -> None:
    (tmp_path / USAGE_FILE).write_text(content, encoding="utf-8")
    assert drive(streamed_answer(output_tokens=4), tmp_path)[-2] == Usage(completion_tokens=4)


def test_a_usage_file_that_is_not_utf8_falls_back(tmp_path: Path) -> None:
    (tmp_path / USAGE_FILE).write_bytes(b"\xff\xfe{}")
    assert drive(streamed_answer(output_tokens=4), tmp_path)[-2] == Usage(completion_tokens=4)


def test_usage_from_metrics_sums_models() -> None:
    metrics = {
        "modelMetrics": {
            "a": {"usage": {"inputTokens": 10, "outputTokens": 1}},
            "b": {"usage": {"inputTokens": 5, "outputTokens": 2, "cacheReadTokens": 4}},
            "c": "garbage",
            "d": {"usage": None},
        }
    }
    assert usage_from_metrics(metrics) == Usage(
        prompt_tokens=15, completion_tokens=3, cached_prompt_tokens=4, reasoning_tokens=None
    )


@pytest.mark.parametrize(
    "metrics",
    [
        {},
        {"modelMetrics": None},
        {"modelMetrics": {"a": {"usage": {"outputTokens": 3}}}},
        {"modelMetrics": {"a": {"usage": {"inputTokens": True, "outputTokens": 3}}}},
        {"modelMetrics": {"a": {"usage": {"inputTokens": "10", "outputTokens": 3}}}},
    ],
)
def test_usage_from_metrics_without_both_counts_is_unknown(metrics: dict[str, Any]) -> None:
    assert usage_from_metrics(metrics) is None


def test_no_result_line_is_a_failure(tmp_path: Path) -> None:
    with pytest.raises(ProxyError, match="without a result") as caught:
        drive(streamed_answer()[:-1], tmp_path)
    assert caught.value.code == "cli_failed"


def test_nonzero_exit_is_cli_failed_with_the_first_stderr_lines(tmp_path: Path) -> None:
    stderr = (
        "\nerror: invalid value 'yaml' for '--output-format <format>'\n"
        "  [possible values: text, json]\n\nFor more information, try '--help'.\n"
    )
    with pytest.raises(ProxyError) as caught:
        drive([], tmp_path, exit_code=1, stderr=stderr)
    assert caught.value.code == "cli_failed"
    assert "invalid value 'yaml'" in caught.value.message
    assert "[possible values: text, json]" in caught.value.message


def test_nonzero_exit_without_stderr_names_the_exit_code(tmp_path: Path) -> None:
    with pytest.raises(ProxyError, match="exit code 3"):
        drive([], tmp_path, exit_code=3)


def test_result_with_a_nonzero_exit_code_is_a_failure(tmp_path: Path) -> None:
    with pytest.raises(ProxyError) as caught:
        drive([*streamed_answer()[:-1], result_line(exit_code=1)], tmp_path)
    assert caught.value.code == "cli_failed"


def test_blocked_outcome_is_a_failure(tmp_path: Path) -> None:
    lines = [*streamed_answer()[:-1], result_line(outcome="blocked", blocker="shell permission")]
    with pytest.raises(ProxyError, match="shell permission") as caught:
        drive(lines, tmp_path)
    assert caught.value.code == "cli_failed"


def real_copilot_auth_stderr() -> str:
    text = (DATA / "error-shapes.txt").read_text("utf-8")
    block = text.split('=== $ copilot -p "Say hi" --allow-all-tools --output-format json\n', 1)[1]
    stderr = block.split("--- stderr:\n", 1)[1].split("\n=== ", 1)[0]
    assert stderr.startswith("Error: No authentication information found.")
    return stderr


def test_real_no_auth_stderr_is_not_logged_in(tmp_path: Path) -> None:
    with pytest.raises(ProxyError) as caught:
        drive([], tmp_path, exit_code=1, stderr=real_copilot_auth_stderr())
    assert caught.value.code == "cli_not_logged_in"
    assert caught.value.status == 503
    assert "COPILOT_GITHUB_TOKEN" in caught.value.message


def test_auth_stderr_wins_even_with_a_zero_exit(tmp_path: Path) -> None:
    with pytest.raises(ProxyError) as caught:
        drive(streamed_answer(), tmp_path, stderr="Error: No authentication information found.\n")
    assert caught.value.code == "cli_not_logged_in"


@pytest.mark.parametrize(
    "message",
    [
        "Execution failed: InvalidArg, No GitHub OAuth token or Copilot HMAC key provided",
        "Not authenticated. Please authenticate first.",
    ],
)
def test_session_error_about_auth_is_not_logged_in(tmp_path: Path, message: str) -> None:
    parser = CopilotOutputParser()
    with pytest.raises(ProxyError) as caught:
        parser.feed(json.loads(event("session.error", errorType="query", message=message)))
    assert caught.value.code == "cli_not_logged_in"


def test_other_session_error_is_cli_failed_with_its_message(tmp_path: Path) -> None:
    lines = [
        event("assistant.message_delta", messageId="m", deltaContent="partial"),
        event("session.error", errorType="query", message="Model overloaded", statusCode=529),
    ]
    with pytest.raises(ProxyError, match="Model overloaded") as caught:
        drive(lines, tmp_path)
    assert caught.value.code == "cli_failed"


def test_session_error_without_a_message(tmp_path: Path) -> None:
    with pytest.raises(ProxyError, match="unknown error"):
        drive([event("session.error", errorType="query")], tmp_path)


# -- model discovery from the real help texts ----------------------------------------------------


def test_config_help_lists_the_31_models_of_the_contract() -> None:
    text = (DATA / "copilot-help-topic-config.txt").read_text("utf-8")
    assert parse_config_help_models(text) == CONTRACT_CONFIG_IDS


def test_config_help_only_reads_the_model_block() -> None:
    text = (DATA / "copilot-help-topic-config.txt").read_text("utf-8")
    quoted_items = re.findall(r'^    - "([^"]+)"$', text, flags=re.MULTILINE)
    assert len(quoted_items) == len(CONTRACT_CONFIG_IDS)
    fake = (
        "  `theme`: colours.\n"
        '    - "dark"\n'
        "  `model`: AI model to use.\n"
        '    - "gpt-x"\n'
        '      - "nested, not an id"\n'
        "  `other`: something.\n"
        '    - "not-a-model"\n'
    )
    assert parse_config_help_models(fake) == ["gpt-x"]


def test_old_help_choices_give_the_four_models() -> None:
    text = (DATA / "copilot-0.0.354-help.txt").read_text("utf-8")
    assert parse_help_choices_models(text) == [
        "claude-sonnet-4.5",
        "claude-sonnet-4",
        "claude-haiku-4.5",
        "gpt-5",
    ]


def test_current_help_has_no_choices_and_no_config_block() -> None:
    text = (DATA / "copilot-help.txt").read_text("utf-8")
    assert parse_help_choices_models(text) == []
    assert parse_config_help_models(text) == []


@pytest.mark.parametrize("text", ["", "garbage\n", "--model <model>  no choices here"])
def test_discovery_parsers_on_junk(text: str) -> None:
    assert parse_config_help_models(text) == []
    assert parse_help_choices_models(text) == []


# -- login state and problems (health) --------------------------------------------------------


def test_health_lists_a_missing_cli_as_a_problem() -> None:
    health = backend().health()
    assert health.state == "down" and health.problems == ("the copilot CLI was not found",)
    # The backend's own report says how to install it.
    assert "not installed" in backend().problems()[0]


def test_byok_counts_as_logged_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_PROVIDER_BASE_URL", "http://127.0.0.1:9")
    assert backend().health().as_json()["logged_in"] is True


def test_a_classic_token_shows_in_health_with_its_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("COPILOT_PROVIDER_BASE_URL", "GH_TOKEN", "GITHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("COPILOT_GITHUB_TOKEN", "ghp_" + "a" * 36)
    one_shot = backend()
    assert one_shot.health().as_json()["logged_in"] is None  # not checked yet
    one_shot._guess_login()
    health = one_shot.health().as_json()
    assert health["logged_in"] is False
    # The CLI is missing here, so /health shows that root cause; the login problem is
    # in the backend's own report.
    assert any("classic personal access token" in p for p in one_shot.problems())


def test_what_a_run_showed_beats_the_guess(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COPILOT_PROVIDER_BASE_URL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN", "COPILOT_HOME"):
        monkeypatch.delenv(name, raising=False)
    one_shot = backend()
    one_shot.note_login(True)  # e.g. a GitHub CLI login the files cannot show
    (tmp_path / ".config" / "gh").mkdir(parents=True)
    (tmp_path / ".config" / "gh" / "hosts.yml").write_text("github.com:\n")
    one_shot._guess_login()  # "cannot tell" keeps what the run showed
    assert one_shot.logged_in is True


async def test_a_byok_operators_own_model_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_PROVIDER_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("COPILOT_MODEL", "deepseek-coder-v2:16b")
    one_shot = backend()

    async def config_help(*args: str, **kwargs: Any) -> str:
        return (DATA / "copilot-help-topic-config.txt").read_text()

    monkeypatch.setattr(one_shot, "run_text", config_help)
    ids = [m.id for m in await one_shot._discover_models()]
    assert ids[:31] == CONTRACT_CONFIG_IDS
    assert ids[-1] == "deepseek-coder-v2:16b"
    monkeypatch.delenv("COPILOT_PROVIDER_BASE_URL")
    assert "deepseek-coder-v2:16b" not in [m.id for m in await one_shot._discover_models()]
