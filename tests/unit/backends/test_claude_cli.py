from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from copilot_cli_proxy.backends.base import BackendEvent, Finish, ModelInfo, TextDelta, Usage
from copilot_cli_proxy.backends.claude_cli import (
    INITIALIZE_REQUEST_ID,
    ClaudeCliBackend,
    ClaudeOutputParser,
    build_claude_argv,
    initialize_request_line,
    parse_auth_status,
    parse_initialize_models,
)
from copilot_cli_proxy.backends.claude_output import usage_from_result
from copilot_cli_proxy.backends.cli_backend import parse_json_line
from copilot_cli_proxy.backends.prompt import CliPrompt
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.requests import ChatRequest, Message
from copilot_cli_proxy.settings import Settings
from tests.fakes_env import FAKE_CLI_ENV

DATA = Path(__file__).resolve().parents[1] / "data" / "cli"
SYSTEM_FILE = Path("/w/system-prompt.md")
# Options whose value, given as a separate element, could swallow what follows.
VALUE_OPTIONS = (
    "--output-format",
    "--model",
    "--system-prompt-file",
    "--tools",
    "--permission-mode",
    "--allowedTools",
    "--effort",
)


def argv_for(**kwargs: Any) -> list[str]:
    kwargs.setdefault("model", "sonnet")
    return build_claude_argv("/opt/claude", system_prompt_file=SYSTEM_FILE, **kwargs)


# -- argv -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tools", [(), ("Read",), ("Read", "Bash(git *)")])
def test_never_skips_permissions(tools: tuple[str, ...]) -> None:
    argv = argv_for(allowed_tools=tools, effort="high")
    assert "--dangerously-skip-permissions" not in argv
    assert "--allow-dangerously-skip-permissions" not in argv
    assert not any("bypassPermissions" in a for a in argv)


def test_no_tools_by_default() -> None:
    argv = argv_for()
    assert "--tools=" in argv
    assert not any(a.startswith("--allowedTools") for a in argv)


def test_allowed_tools_are_one_comma_separated_value() -> None:
    argv = argv_for(allowed_tools=("Read", "Bash(git *)"))
    assert "--tools=Read,Bash(git *)" in argv
    assert "--allowedTools=Read,Bash(git *)" in argv


@pytest.mark.parametrize("tools", [(), ("Read",), ("Read", "Edit")])
@pytest.mark.parametrize("effort", [None, "low", "max"])
def test_every_option_with_a_value_is_in_flag_equals_value_form(
    tools: tuple[str, ...], effort: str | None
) -> None:
    argv = argv_for(allowed_tools=tools, effort=effort)
    assert argv[0] == "/opt/claude"
    for arg in argv[1:]:
        assert arg.startswith("-"), f"{arg!r} is a positional that an option could swallow"
        assert arg not in VALUE_OPTIONS, f"{arg} takes its value in a separate element"
    assert "--" not in argv


@pytest.mark.parametrize(
    "prompt", ["Say hi", "--dangerously-skip-permissions", "-x --yolo", "--tools=Bash 한"]
)
def test_prompt_is_never_in_argv(prompt: str, tmp_path: Path) -> None:
    request = ChatRequest(model="sonnet", messages=(Message(role="user", content=prompt),))
    backend = ClaudeCliBackend(Settings(service="claude", claude_cli_path="/nonexistent/claude"))
    invocation = backend.prepare(
        tmp_path, CliPrompt(system="", prompt=prompt), "sonnet", request, "/opt/claude"
    )
    assert not any(prompt in a for a in invocation.argv)
    assert invocation.stdin == prompt.encode("utf-8")
    assert "--dangerously-skip-permissions" not in invocation.argv


def test_prepare_writes_the_system_prompt_file_even_when_empty(tmp_path: Path) -> None:
    backend = ClaudeCliBackend(Settings(service="claude", claude_cli_path="/nonexistent/claude"))
    request = ChatRequest(model="sonnet", messages=(Message(role="user", content="hi"),))
    invocation = backend.prepare(
        tmp_path, CliPrompt(system="", prompt="hi"), "sonnet", request, "/c"
    )
    system_file = tmp_path / "system-prompt.md"
    assert system_file.read_text("utf-8") == ""
    assert f"--system-prompt-file={system_file}" in invocation.argv
    backend.prepare(
        tmp_path, CliPrompt(system="Be brief. 한", prompt="hi"), "sonnet", request, "/c"
    )
    assert system_file.read_text("utf-8") == "Be brief. 한"


def test_stream_json_output_options() -> None:
    argv = argv_for()
    assert argv[1] == "-p"
    for option in (
        "--output-format=stream-json",
        "--verbose",
        "--include-partial-messages",
        "--model=sonnet",
        f"--system-prompt-file={SYSTEM_FILE}",
        "--permission-mode=dontAsk",
        "--no-session-persistence",
        "--strict-mcp-config",
    ):
        assert option in argv


@pytest.mark.parametrize("effort", ["low", "medium", "high", "xhigh", "max"])
def test_known_efforts_are_passed(effort: str) -> None:
    assert f"--effort={effort}" in argv_for(effort=effort)


@pytest.mark.parametrize("effort", [None, "none", "minimal", "huge"])
def test_efforts_claude_does_not_know_are_left_out(effort: str | None) -> None:
    assert not any(a.startswith("--effort") for a in argv_for(effort=effort))


def test_model_starting_with_a_dash_stays_a_value() -> None:
    argv = argv_for(model="--dangerously-skip-permissions")
    assert "--model=--dangerously-skip-permissions" in argv
    assert "--dangerously-skip-permissions" not in argv


# -- output parsing ---------------------------------------------------------------------------

SESSION = "ecdd7199-fd67-4d7d-8327-e52d6d180c4d"


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def init_line() -> bytes:
    return line(
        {
            "type": "system",
            "subtype": "init",
            "cwd": "/tmp/req-x",
            "session_id": SESSION,
            "tools": [],
            "mcp_servers": [],
            "model": "claude-sonnet-5",
            "permissionMode": "dontAsk",
            "apiKeySource": "none",
        }
    )


def stream_event(event: dict[str, Any], parent: str | None = None) -> bytes:
    return line(
        {
            "type": "stream_event",
            "event": event,
            "parent_tool_use_id": parent,
            "uuid": "u",
            "session_id": SESSION,
        }
    )


def text_delta(text: str, index: int = 0) -> bytes:
    return stream_event(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": text},
        }
    )


def message_start(message_id: str) -> bytes:
    return stream_event(
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "model": "claude-sonnet-5",
                "role": "assistant",
                "content": [],
                "usage": {"input_tokens": 12, "output_tokens": 1},
            },
        }
    )


def message_delta(stop_reason: str) -> bytes:
    return stream_event(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 5},
        }
    )


def assistant(
    message_id: str, *blocks: dict[str, Any], stop_reason: str | None = None, **extra: Any
) -> bytes:
    body: dict[str, Any] = {
        "type": "assistant",
        "message": {
            "id": message_id,
            "model": "claude-sonnet-5",
            "role": "assistant",
            "content": list(blocks),
            "stop_reason": stop_reason,
            "usage": {"input_tokens": 12, "output_tokens": 5},
        },
        "parent_tool_use_id": None,
        "session_id": SESSION,
        "uuid": "u2",
    }
    body.update(extra)
    return line(body)


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def result(
    text: str = "Hello",
    *,
    subtype: str = "success",
    is_error: bool = False,
    stop_reason: str | None = "end_turn",
    usage: dict[str, Any] | None = None,
    **extra: Any,
) -> bytes:
    body: dict[str, Any] = {
        "type": "result",
        "subtype": subtype,
        "is_error": is_error,
        "api_error_status": None,
        "duration_ms": 900,
        "duration_api_ms": 800,
        "num_turns": 1,
        "result": text,
        "stop_reason": stop_reason,
        "session_id": SESSION,
        "total_cost_usd": 0.001,
        "usage": usage
        if usage is not None
        else {
            "input_tokens": 3,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 2000,
            "output_tokens": 5,
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": "standard",
        },
        "modelUsage": {},
        "permission_denials": [],
        "terminal_reason": "completed",
        "uuid": "u3",
    }
    body.update(extra)
    return line(body)


def drive(
    lines: list[bytes],
    exit_code: int = 0,
    stderr: str = "",
    parser: ClaudeOutputParser | None = None,
) -> list[BackendEvent]:
    parser = parser or ClaudeOutputParser()
    events: list[BackendEvent] = []
    for raw in lines:
        obj = parse_json_line(raw)
        if obj is None:
            parser.feed_text(raw.decode("utf-8", "replace"))
            continue
        events.extend(parser.feed(obj))
    events.extend(parser.finish(exit_code, stderr, Path("/nonexistent")))
    return events


def fails(lines: list[bytes], **kwargs: Any) -> ProxyError:
    with pytest.raises(ProxyError) as caught:
        drive(lines, **kwargs)
    return caught.value


def texts(events: list[BackendEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


def streamed(stop_reason: str = "end_turn") -> list[bytes]:
    return [
        init_line(),
        line(
            {"type": "system", "subtype": "status", "status": "requesting", "session_id": SESSION}
        ),
        message_start("msg_01"),
        stream_event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        text_delta("Hel"),
        text_delta("lo, 세계 😀"),
        stream_event({"type": "content_block_stop", "index": 0}),
        message_delta(stop_reason),
        stream_event({"type": "message_stop"}),
        assistant("msg_01", text_block("Hello, 세계 😀"), stop_reason=stop_reason),
        result("Hello, 세계 😀", stop_reason=stop_reason),
    ]


def test_partial_stream_events_are_the_answer_and_not_duplicated() -> None:
    events = drive(streamed())
    assert texts(events) == ["Hel", "lo, 세계 😀"]
    assert events[-1] == Finish("stop")


def test_usage_counts_cache_tokens_as_prompt_tokens() -> None:
    usage = drive(streamed())[-2]
    assert usage == Usage(prompt_tokens=2103, completion_tokens=5, cached_prompt_tokens=2000)
    assert isinstance(usage, Usage) and usage.total_tokens == 2108


def test_assistant_text_is_used_when_no_partial_events_were_seen() -> None:
    lines = [init_line(), assistant("msg_01", text_block("Hello "), text_block("there")), result()]
    events = drive(lines)
    assert texts(events) == ["Hello there"]
    assert events[-1] == Finish("stop")


def test_second_message_without_deltas_is_still_emitted() -> None:
    lines = [
        init_line(),
        message_start("msg_01"),
        text_delta("Let me check. "),
        assistant(
            "msg_01",
            text_block("Let me check. "),
            {"type": "tool_use", "id": "t", "name": "Read", "input": {}},
        ),
        line(
            {
                "type": "user",
                "message": {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}],
                },
                "parent_tool_use_id": None,
            }
        ),
        assistant("msg_02", text_block("Done.")),
        result("Done."),
    ]
    assert texts(drive(lines)) == ["Let me check. ", "Done."]


def test_thinking_and_tool_use_blocks_are_not_the_answer() -> None:
    lines = [
        assistant(
            "m",
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "tool_use", "id": "t", "name": "Bash", "input": {"command": "ls"}},
            text_block("Answer"),
        ),
        stream_event(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "x"},
            }
        ),
        stream_event(
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": "{"},
            }
        ),
        result("Answer"),
    ]
    assert texts(drive(lines)) == ["Answer"]


def test_sub_agent_output_is_not_the_answer() -> None:
    lines = [
        message_start("msg_01"),
        text_delta("visible"),
        stream_event(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "sub"},
            },
            parent="toolu_1",
        ),
        assistant("msg_sub", text_block("sub agent"), parent_tool_use_id="toolu_1"),
        assistant("msg_01", text_block("visible")),
        result("visible"),
    ]
    assert texts(drive(lines)) == ["visible"]


def test_unknown_and_malformed_lines_are_skipped() -> None:
    lines = [
        b"some UI noise",
        line({"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}}),
        line({"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 10}),
        line({"type": "conversation_reset"}),
        line({"type": "brand_new_type", "x": [1]}),
        line({"type": "stream_event", "event": "not an object"}),
        line({"type": "stream_event", "event": {"type": "content_block_delta", "delta": "x"}}),
        line(
            {
                "type": "stream_event",
                "event": {
                    "type": "content_block_delta",
                    "delta": {"type": "text_delta", "text": 5},
                },
            }
        ),
        line({"type": "assistant", "message": "not an object"}),
        line({"type": "assistant", "message": {"id": "m", "content": "not a list"}}),
        b"[1, 2, 3]",
        b"\xff\xfe broken utf-8",
        result("ok"),
    ]
    events = drive(lines)
    assert texts(events) == []
    assert events[-1] == Finish("stop")


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_stop_reason_maps_to_finish_reason(stop_reason: str | None, finish: str) -> None:
    lines = [
        assistant("m", text_block("x"), stop_reason=stop_reason),
        result("x", stop_reason=stop_reason),
    ]
    assert drive(lines)[-1] == Finish(finish)  # type: ignore[arg-type]


def test_max_tokens_seen_only_in_the_stream_is_length() -> None:
    lines = [
        message_start("m"),
        text_delta("cut"),
        message_delta("max_tokens"),
        result("cut", stop_reason=None),
    ]
    assert drive(lines)[-1] == Finish("length")


def test_usage_unknown_when_the_result_has_none() -> None:
    events = drive([assistant("m", text_block("x")), result("x", usage={})])
    assert events[-2] == Usage()


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, None),
        ("x", None),
        ({"output_tokens": 5}, None),
        ({"input_tokens": 5}, None),
        ({"input_tokens": 1, "output_tokens": 2}, Usage(1, 2, cached_prompt_tokens=0)),
        (
            {"input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": "many"},
            Usage(1, 2, cached_prompt_tokens=0),
        ),
    ],
)
def test_usage_from_result(usage: Any, expected: Usage | None) -> None:
    assert usage_from_result(usage) == expected


def real_lines(command: str) -> list[bytes]:
    text = (DATA / "error-shapes.txt").read_text("utf-8")
    block = text.split(f"=== $ {command}\n", 1)[1].split("\n=== ", 1)[0]
    stdout = block.split("--- stdout:\n", 1)[1].split("--- stderr:", 1)[0]
    return [raw.encode("utf-8") for raw in stdout.splitlines() if raw.strip()]


@pytest.mark.parametrize(
    "command",
    [
        'claude -p "Say hi" --output-format stream-json --verbose --include-partial-messages',
        'claude -p "Say hi" --output-format stream-json --verbose',
        'claude -p "Say hi" --output-format json',
    ],
)
def test_real_not_logged_in_output_is_cli_not_logged_in(command: str) -> None:
    lines = real_lines(command)
    assert lines and all(parse_json_line(raw) is not None for raw in lines)
    parser = ClaudeOutputParser()
    events: list[BackendEvent] = []
    with pytest.raises(ProxyError) as caught:
        for raw in lines:
            obj = parse_json_line(raw)
            assert obj is not None
            events.extend(parser.feed(obj))
    assert caught.value.code == "cli_not_logged_in"
    assert caught.value.status == 503
    assert "claude auth login" in caught.value.message
    assert texts(events) == [], "the login error must not be streamed as the answer"


def test_real_not_logged_in_text_output_is_cli_not_logged_in() -> None:
    lines = real_lines('claude -p "Say hi"')
    assert lines == ["Not logged in · Please run /login".encode()]
    error = fails(lines, exit_code=1)
    assert error.code == "cli_not_logged_in"


def test_authentication_failed_without_the_known_text_is_still_not_logged_in() -> None:
    lines = [
        assistant("m", text_block("Credentials expired"), error="authentication_failed"),
        result("Credentials expired", is_error=True),
    ]
    assert fails(lines).code == "cli_not_logged_in"


def test_invalid_api_key_result_is_not_logged_in() -> None:
    assert fails([result("Invalid API key · Fix external API key", is_error=True)]).code == (
        "cli_not_logged_in"
    )


@pytest.mark.parametrize(
    ("assistant_error", "code", "status"),
    [
        ("rate_limit", "rate_limit_exceeded", 429),
        ("overloaded", "cli_unavailable", 503),
        ("server_error", "cli_unavailable", 503),
        ("billing_error", "cli_unavailable", 503),
        ("invalid_request", "cli_failed", 502),
        ("unknown", "cli_failed", 502),
        ("max_output_tokens", "cli_failed", 502),
    ],
)
def test_assistant_error_kinds(assistant_error: str, code: str, status: int) -> None:
    lines = [
        assistant("m", text_block("API Error"), error=assistant_error),
        result("API Error: something", is_error=True),
    ]
    error = fails(lines)
    assert (error.code, error.status) == (code, status)
    assert "API Error: something" in error.message


def test_model_not_found_names_the_model_param() -> None:
    text = (
        "There's an issue with the selected model (nope). "
        "It may not exist or you may not have access to it."
    )
    lines = [assistant("m", text_block(text), error="model_not_found"), result(text, is_error=True)]
    error = fails(lines)
    assert (error.code, error.param) == ("model_not_found", "model")
    assert "nope" in error.message


@pytest.mark.parametrize(
    "subtype",
    [
        "error_during_execution",
        "error_max_turns",
        "error_max_budget_usd",
    ],
)
def test_error_subtypes_are_cli_failed(subtype: str) -> None:
    error = fails(
        [result("", subtype=subtype, is_error=True, errors=["Tool loop detected", "gave up"])]
    )
    assert error.code == "cli_failed"
    assert "Tool loop detected; gave up" in error.message


def test_structured_output_retries_exhausted_is_invalid_structured_output() -> None:
    error = fails(
        [
            result(
                "",
                subtype="error_max_structured_output_retries",
                is_error=True,
                errors=["Failed to provide valid structured output after 5 attempts"],
            )
        ]
    )
    assert error.code == "invalid_structured_output"
    assert error.status == 502
    assert "after 5 attempts" in error.message


def test_error_subtype_without_is_error_is_still_a_failure() -> None:
    error = fails([result("", subtype="error_max_turns", is_error=False)])
    assert error.code == "cli_failed"
    assert "error_max_turns" in error.message


def test_result_after_text_still_raises() -> None:
    parser = ClaudeOutputParser()
    events: list[BackendEvent] = []
    with pytest.raises(ProxyError):
        for raw in [
            message_start("m"),
            text_delta("partial"),
            result("boom", subtype="error_during_execution", is_error=True),
        ]:
            obj = parse_json_line(raw)
            assert obj is not None
            events.extend(parser.feed(obj))
    assert texts(events) == ["partial"]


def test_ending_without_a_result_is_cli_failed_with_stderr() -> None:
    stderr = "Error: When using --print, --output-format=stream-json requires --verbose\n"
    error = fails([], exit_code=1, stderr=stderr)
    assert error.code == "cli_failed"
    assert "requires --verbose" in error.message
    assert "exit code 1" in error.message


def test_ending_without_a_result_or_stderr() -> None:
    error = fails([init_line(), message_start("m"), text_delta("half")], exit_code=-9)
    assert error.code == "cli_failed"
    assert "exit code -9" in error.message


def test_finish_after_a_result_adds_nothing_whatever_the_exit_code() -> None:
    parser = ClaudeOutputParser()
    obj = parse_json_line(result("ok"))
    assert obj is not None
    parser.feed(obj)
    assert parser.done
    assert parser.finish(1, "Warning: something", Path("/nonexistent")) == []


# -- model discovery ---------------------------------------------------------------------------


def real_initialize_line() -> str:
    raw = json.loads((DATA / "claude-initialize-control-response.json").read_text("utf-8"))
    return json.dumps(raw, ensure_ascii=False)


OPUS = ("claude-opus-4-8[1m]", "claude-opus-4-8")
EXPECTED_MODELS = [
    ModelInfo("default", "anthropic", "Default (recommended)", OPUS),
    ModelInfo("opus[1m]", "anthropic", "Opus", OPUS),
    ModelInfo("sonnet", "anthropic", "Sonnet", ("claude-sonnet-5",)),
    ModelInfo("haiku", "anthropic", "Haiku", ("claude-haiku-4-5-20251001",)),
    # then each resolved full name once, as a model of its own
    ModelInfo("claude-opus-4-8[1m]", "anthropic", "Opus", ("claude-opus-4-8",)),
    ModelInfo("claude-sonnet-5", "anthropic", "Sonnet"),
    ModelInfo("claude-haiku-4-5-20251001", "anthropic", "Haiku"),
]


def test_initialize_reply_gives_the_four_aliases_then_their_full_names() -> None:
    assert parse_initialize_models(real_initialize_line()) == EXPECTED_MODELS


def test_initialize_reply_among_other_lines() -> None:
    stdout = "\n".join(
        [
            "noise",
            init_line().decode(),
            json.dumps(
                {
                    "type": "control_response",
                    "response": {"subtype": "error", "request_id": "x", "error": "Unsupported"},
                }
            ),
            real_initialize_line(),
            "",
        ]
    )
    assert parse_initialize_models(stdout) == EXPECTED_MODELS


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "Not logged in · Please run /login",
        json.dumps({"type": "control_response", "response": {"subtype": "error", "error": "nope"}}),
        json.dumps(
            {"type": "control_response", "response": {"subtype": "success", "response": {}}}
        ),
        json.dumps({"type": "control_response", "response": "x"}),
    ],
)
def test_no_models_from_junk_or_error_replies(stdout: str) -> None:
    assert parse_initialize_models(stdout) == []


def test_malformed_model_entries_are_skipped() -> None:
    reply = {
        "type": "control_response",
        "response": {
            "subtype": "success",
            "request_id": "r",
            "response": {
                "models": [
                    "x",
                    {"displayName": "no value"},
                    {"value": 5},
                    {"value": "ok", "displayName": 3, "resolvedModel": None},
                ]
            },
        },
    }
    assert parse_initialize_models(json.dumps(reply)) == [ModelInfo("ok", "anthropic")]


def test_initialize_request_is_one_json_line() -> None:
    raw = initialize_request_line()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    obj = json.loads(raw)
    assert obj["type"] == "control_request"
    assert obj["request_id"] == INITIALIZE_REQUEST_ID
    assert obj["request"]["subtype"] == "initialize"


def discovered_backend() -> ClaudeCliBackend:
    backend = ClaudeCliBackend(Settings(service="claude", claude_cli_path="/nonexistent/claude"))

    async def discover() -> list[ModelInfo]:
        return parse_initialize_models(real_initialize_line())

    backend.catalog._discover = discover
    return backend


@pytest.mark.parametrize(
    "model",
    [
        "sonnet",
        "opus[1m]",
        "claude-sonnet-5",  # a resolved name from the initialize reply
        "claude-opus-4-8",  # the same without the 1M context
        "claude-sonnet-4-5",  # a full name the CLI takes without listing it
        "claude-3-5-haiku-20241022",
        "claude-opus-4-8[1m]",
    ],
)
async def test_aliases_and_full_model_names_are_accepted(model: str) -> None:
    assert await discovered_backend().catalog.resolve(model) == model


@pytest.mark.parametrize(
    "model", ["gpt-4o", "claude", "claude-", "claude-x/../y", "claude-x --tools=Bash", "Claude-X"]
)
async def test_other_names_are_model_not_found(model: str) -> None:
    with pytest.raises(ProxyError) as caught:
        await discovered_backend().catalog.resolve(model)
    assert caught.value.code == "model_not_found" and caught.value.param == "model"


# -- login state -----------------------------------------------------------------------------

FAKE_CLAUDE = str(Path(__file__).resolve().parents[2] / "fakes" / "claude")


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        # the real outputs of 2.1.197 (fresh HOME; ANTHROPIC_API_KEY; CLAUDE_CODE_OAUTH_TOKEN)
        (
            '{\n  "loggedIn": false,\n  "authMethod": "none",\n  "apiProvider": "firstParty"\n}',
            False,
        ),
        ('{"loggedIn": true, "authMethod": "api_key", "apiKeySource": "ANTHROPIC_API_KEY"}', True),
        ('{"loggedIn": true, "authMethod": "oauth_token", "apiProvider": "firstParty"}', True),
        ("Login method: Claude API account", None),
        ("", None),
        ('{"loggedIn": "yes"}', None),
        ("[true]", None),
    ],
)
def test_auth_status_output(stdout: str, expected: bool | None) -> None:
    assert parse_auth_status(stdout) is expected


def claude_backend(tmp_path: Path, cli: str = FAKE_CLAUDE) -> ClaudeCliBackend:
    return ClaudeCliBackend(
        Settings(
            service="claude",
            claude_cli_path=cli,
            temp_dir_base=str(tmp_path / "t"),
            cli_env=FAKE_CLI_ENV,
        )
    )


async def test_health_says_logged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAKE_CLI_LOGGED_OUT", raising=False)
    backend = claude_backend(tmp_path)
    assert backend.health().as_json()["logged_in"] is None  # not asked yet
    assert await backend.check_login() is True
    assert backend.health().as_json()["logged_in"] is True
    assert backend.health().as_json()["problems"] == []


async def test_health_says_not_logged_in_and_how_to_log_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_LOGGED_OUT", "1")
    backend = claude_backend(tmp_path)
    assert await backend.check_login() is False
    health = backend.health().as_json()
    assert health["logged_in"] is False
    (problem,) = health["problems"]
    assert "not logged in" in problem and "copilot-cli-proxy login claude" in problem


async def test_a_cli_that_cannot_say_makes_the_login_state_unknown(tmp_path: Path) -> None:
    broken = tmp_path / "claude"
    broken.write_text("#!/bin/sh\necho 'Segmentation fault' >&2\nexit 139\n")
    broken.chmod(0o755)
    backend = claude_backend(tmp_path, str(broken))
    assert await backend.check_login() is None
    health = backend.health().as_json()
    assert health["logged_in"] is None
    assert any("no login state" in p for p in health["problems"])


async def test_a_login_check_that_fails_to_run_never_raises(tmp_path: Path) -> None:
    backend = claude_backend(tmp_path)
    (tmp_path / "t").write_text("a file where the temp dir should be")
    assert await backend.check_login() is None
    assert backend.health().as_json()["problems"], "the reason is shown"
