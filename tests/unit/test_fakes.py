"""The fake CLIs keep the real CLIs' contract (shared/reference/cli-contract.md), so the
end-to-end tests that use them mean something."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

FAKES = Path(__file__).resolve().parents[1] / "fakes"
CLAUDE = str(FAKES / "claude")
COPILOT = str(FAKES / "copilot")
MULTIBYTE = "안녕하세요 世界 🎉 👩‍👩‍👧 café — ünïcödé ✓"
NOT_LOGGED_IN = "Not logged in · Please run /login"
COPILOT_AUTH_ERROR = (
    (
        "Error: No authentication information found.\n\n"
        "Copilot can be authenticated with GitHub using an OAuth Token or a Fine-Grained Personal "
        "Access Token.\n\n"
    )
    + """To authenticate, you can use any of the following methods:
  • Start 'copilot' and run the '/login' command
  • Set the COPILOT_GITHUB_TOKEN, GH_TOKEN, or GITHUB_TOKEN environment variable
  • Run 'gh auth login' to authenticate with the GitHub CLI
"""
)
CLAUDE_STREAM = ["-p", "--output-format=stream-json", "--verbose"]
MODEL_LINE = re.compile(r'^    - "([^"]+)"$')


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_")}
    env.update(extra)
    return env


def run(
    cli: str, *args: str, stdin: bytes = b"", cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [cli, *args], input=stdin, capture_output=True, cwd=cwd, env=clean_env(**env), timeout=20
    )


def lines(output: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.decode("utf-8").splitlines() if line.strip()]


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


# -- option errors --------------------------------------------------------------------


def test_claude_unknown_option_is_commanders_error() -> None:
    result = run(CLAUDE, "-p", "--x", "hi")
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode() == "error: unknown option '--x'\n"


def test_claude_bad_choice_lists_allowed_values() -> None:
    result = run(CLAUDE, "-p", "hi", "--output-format", "yaml")
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "error: option '--output-format <format>' argument 'yaml' is invalid. "
        "Allowed choices are text, json, stream-json.\n"
    )


def test_claude_stream_json_needs_verbose() -> None:
    result = run(CLAUDE, "-p", "--output-format=stream-json", stdin=b"hi")
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "Error: When using --print, --output-format=stream-json requires --verbose\n"
    )


def test_claude_variadic_option_swallows_the_prompt_but_not_in_equals_form() -> None:
    swallowed = run(CLAUDE, "-p", "--tools", "Read", "Say hi")
    assert swallowed.returncode == 1
    assert "Input must be provided" in swallowed.stderr.decode()
    kept = run(CLAUDE, "-p", "--tools=Read", "Say hi")
    assert (kept.returncode, kept.stdout.decode()) == (0, "echo: Say hi\n")


def test_claude_reads_the_prompt_from_stdin_as_data() -> None:
    result = run(CLAUDE, "-p", "--tools=", stdin=b"--dangerously-skip-permissions\n-p")
    assert (result.returncode, result.stdout.decode()) == (0, "echo: -p\n")


def test_copilot_unknown_option_is_claps_error() -> None:
    result = run(COPILOT, "--x")
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode() == (
        "error: unexpected argument '--x' found\n\n"
        "Usage: copilot [OPTIONS] [COMMAND]\n\n"
        "For more information, try '--help'.\n"
    )


def test_copilot_unknown_option_with_a_prompt_blames_quoting() -> None:
    result = run(COPILOT, "--prompt=hi", "--x")
    assert result.returncode == 1
    assert result.stderr.decode().startswith("error: Invalid command format.\n\nIt looks like")


def test_copilot_bad_enum_value() -> None:
    result = run(COPILOT, "-p", "hi", "--reasoning-effort=huge")
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "error: invalid value 'huge' for '--reasoning-effort <level>'\n"
        "  [possible values: none, minimal, low, medium, high, xhigh, max]\n\n"
        "For more information, try '--help'.\n"
    )


def test_versions_are_the_real_texts() -> None:
    assert run(CLAUDE, "--version").stdout == b"2.1.197 (Claude Code)\n"
    assert run(COPILOT, "--version").stdout == (
        b"GitHub Copilot CLI 1.0.102.\nRun 'copilot update' to check for updates.\n"
    )


# -- not logged in ---------------------------------------------------------------------


def test_claude_not_logged_in_text_goes_to_stdout() -> None:
    result = run(CLAUDE, "-p", stdin=b"FAKE_NOT_LOGGED_IN\nhi")
    assert (result.returncode, result.stdout.decode(), result.stderr) == (
        1,
        NOT_LOGGED_IN + "\n",
        b"",
    )


def test_claude_not_logged_in_stream_json_is_an_error_result_under_success() -> None:
    result = run(CLAUDE, *CLAUDE_STREAM, stdin=b"hi", FAKE_CLI_LOGGED_OUT="1")
    assert result.returncode == 1
    init, assistant, final = lines(result.stdout)
    assert (init["type"], init["subtype"]) == ("system", "init")
    assert assistant["error"] == "authentication_failed"
    assert assistant["message"]["model"] == "<synthetic>"
    assert final["subtype"] == "success" and final["is_error"] is True
    assert final["result"] == NOT_LOGGED_IN


def test_copilot_not_logged_in_is_the_stderr_text_and_nothing_on_stdout(tmp_path: Path) -> None:
    usage = tmp_path / "usage.json"
    result = run(
        COPILOT,
        "--prompt=hi",
        "--output-format=json",
        f"--usage-output-file={usage}",
        FAKE_CLI_LOGGED_OUT="1",
    )
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode() == COPILOT_AUTH_ERROR
    assert json.loads(usage.read_text())["modelMetrics"] == {}  # written even so, like the real one


# -- answers ---------------------------------------------------------------------------


def test_claude_stream_json_line_order_with_partial_messages(tmp_path: Path) -> None:
    result = run(
        CLAUDE,
        *CLAUDE_STREAM,
        "--include-partial-messages",
        "--model=sonnet",
        "--tools=",
        "--permission-mode=dontAsk",
        stdin=b"hello there",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    kinds = [o["event"]["type"] if o["type"] == "stream_event" else o["type"] for o in out]
    assert kinds[:5] == [
        "system",
        "system",
        "message_start",
        "content_block_start",
        "content_block_delta",
    ]
    assert kinds[-6:] == [
        "content_block_delta",
        "content_block_stop",
        "assistant",
        "message_delta",
        "message_stop",
        "result",
    ]
    init = out[0]
    assert init["tools"] == [] and init["permissionMode"] == "dontAsk"
    assert init["model"] == "claude-sonnet-5" and init["cwd"] == str(tmp_path)
    texts = [
        o["event"]["delta"]["text"]
        for o in out
        if o["type"] == "stream_event" and o["event"]["type"] == "content_block_delta"
    ]
    assert len(texts) > 1 and "".join(texts) == "echo: hello there"
    final = out[-1]
    assert final["is_error"] is False and final["result"] == "echo: hello there"
    assert final["usage"]["input_tokens"] == len(b"hello there") // 4 + 1
    assert final["usage"]["output_tokens"] == len("echo: hello there") // 4 + 1
    assert "claude-sonnet-5" in final["modelUsage"]
    assert len({o.get("session_id") for o in out if "session_id" in o}) == 1


def test_claude_max_tokens_stop_reason() -> None:
    result = run(
        CLAUDE,
        *CLAUDE_STREAM,
        "--include-partial-messages",
        stdin=b"FAKE_STOP_REASON=max_tokens\nx",
    )
    out = lines(result.stdout)
    delta = next(
        o for o in out if o["type"] == "stream_event" and o["event"]["type"] == "message_delta"
    )
    assert delta["event"]["delta"]["stop_reason"] == "max_tokens"
    assert out[-1]["stop_reason"] == "max_tokens"


@pytest.mark.parametrize("cli", ["claude", "copilot"])
def test_multibyte_reply_is_byte_exact_after_joining_deltas(cli: str) -> None:
    prompt = f"FAKE_REPLY={MULTIBYTE}\nsay it"
    if cli == "claude":
        result = run(CLAUDE, *CLAUDE_STREAM, "--include-partial-messages", stdin=prompt.encode())
        texts = [
            o["event"]["delta"]["text"]
            for o in lines(result.stdout)
            if o["type"] == "stream_event" and o["event"]["type"] == "content_block_delta"
        ]
    else:
        result = run(COPILOT, f"--prompt={prompt}", "--output-format=json", "--stream=on")
        texts = [
            o["data"]["deltaContent"]
            for o in lines(result.stdout)
            if o["type"] == "assistant.message_delta"
        ]
    assert result.returncode == 0, result.stderr
    assert len(texts) > 1
    assert "".join(texts).encode("utf-8") == MULTIBYTE.encode("utf-8")


def test_copilot_json_events_result_and_usage_file(tmp_path: Path) -> None:
    usage = tmp_path / "usage.json"
    result = run(
        COPILOT,
        "--prompt=hello there",
        "--output-format=json",
        "--stream=on",
        "--model=gpt-5-mini",
        "--available-tools=",
        "--deny-tool=shell",
        f"--usage-output-file={usage}",
        "--log-level=none",
    )
    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    kinds = [o["type"] for o in out]
    assert kinds[0] == "user.message"
    assert kinds.index("assistant.turn_start") < kinds.index("assistant.message_delta")
    assert kinds[-3:] == ["assistant.message", "assistant.turn_end", "result"]
    assert all({"type", "data", "id", "timestamp", "parentId"} <= set(o) for o in out[:-1])
    message = next(o for o in out if o["type"] == "assistant.message")["data"]
    assert message["content"] == "echo: hello there" and message["toolRequests"] == []
    final = out[-1]
    assert final["exitCode"] == 0 and "premiumRequests" in final["usage"]
    metrics = json.loads(usage.read_text())["modelMetrics"]["gpt-5-mini"]
    assert metrics["usage"]["inputTokens"] == len(b"hello there") // 4 + 1
    assert metrics["usage"]["outputTokens"] == len("echo: hello there") // 4 + 1


def test_copilot_stream_off_has_no_deltas() -> None:
    out = lines(run(COPILOT, "--prompt=hi", "--output-format=json", "--stream=off").stdout)
    assert "assistant.message_delta" not in [o["type"] for o in out]


def test_copilot_text_mode_writes_the_answer() -> None:
    result = run(COPILOT, "-p", "hi", "-s")
    assert (result.returncode, result.stdout.decode(), result.stderr) == (0, "echo: hi\n", b"")


def test_inspect_reports_argv_cwd_files_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "system-prompt.md").write_text("해적 🏴‍☠️")
    prompt = "FAKE_INSPECT\nwho are you?"
    args = [*CLAUDE_STREAM, f"--system-prompt-file={tmp_path / 'system-prompt.md'}"]
    seen = json.loads(
        str(lines(run(CLAUDE, *args, stdin=prompt.encode(), cwd=tmp_path).stdout)[-1]["result"])
    )
    assert seen["argv"] == args and seen["cwd"] == str(tmp_path) and seen["stdin"] == prompt
    assert seen["files"] == {"system-prompt.md": "해적 🏴‍☠️"}
    copilot = run(COPILOT, f"--prompt={prompt}", "-s", cwd=tmp_path)
    seen = json.loads(copilot.stdout)
    assert seen["argv"] == [f"--prompt={prompt}", "-s"] and seen["stdin"] is None


# -- failures --------------------------------------------------------------------------


def test_claude_fail_midstream_is_an_error_result_after_some_text() -> None:
    result = run(
        CLAUDE,
        *CLAUDE_STREAM,
        "--include-partial-messages",
        stdin=b"FAKE_FAIL_MIDSTREAM\nhello world",
    )
    out = lines(result.stdout)
    assert result.returncode == 1
    assert any(
        o["type"] == "stream_event" and o["event"]["type"] == "content_block_delta" for o in out
    )
    assert out[-1]["subtype"] == "error_during_execution" and out[-1]["is_error"] is True


def test_copilot_fail_midstream_is_a_session_error_and_exit_1() -> None:
    result = run(COPILOT, "--prompt=FAKE_FAIL_MIDSTREAM\nhello world", "--output-format=json")
    kinds = [o["type"] for o in lines(result.stdout)]
    assert result.returncode == 1 and result.stderr
    assert "assistant.message_delta" in kinds and kinds[-1] == "session.error"
    assert "result" not in kinds


@pytest.mark.parametrize("cli", ["claude", "copilot"])
def test_crash_leaves_no_final_line(cli: str) -> None:
    if cli == "claude":
        result = run(CLAUDE, *CLAUDE_STREAM, "--include-partial-messages", stdin=b"FAKE_CRASH\nx")
    else:
        result = run(COPILOT, "--prompt=FAKE_CRASH\nx", "--output-format=json")
    assert result.returncode == 1 and result.stderr
    assert lines(result.stdout)[-1]["type"] not in ("result", "assistant.message")


# -- discovery and long-lived modes ----------------------------------------------------


def test_copilot_help_config_model_block() -> None:
    result = run(COPILOT, "help", "config")
    assert result.returncode == 0
    ids = [
        m.group(1) for line in result.stdout.decode().splitlines() if (m := MODEL_LINE.match(line))
    ]
    assert len(ids) == 31
    assert ids[0] == "claude-sonnet-5.5" and ids[-1] == "kimi-k3" and "gpt-5-mini" in ids


def test_copilot_instruction_list_sees_agents_md(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("rules")
    listed = json.loads(run(COPILOT, "instruction", "list", "--json", cwd=tmp_path).stdout)
    assert [entry["sourcePath"] for entry in listed] == ["AGENTS.md"]


def test_claude_initialize_then_turns_in_one_session() -> None:
    with subprocess.Popen(
        [CLAUDE, "-p", "--input-format=stream-json", "--output-format=stream-json", "--verbose"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        request = {
            "type": "control_request",
            "request_id": "req_1",
            "request": {"subtype": "initialize", "hooks": None},
        }
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        proc.stdin.flush()
        reply = json.loads(proc.stdout.readline())
        assert reply["type"] == "control_response"
        response = reply["response"]
        assert (response["subtype"], response["request_id"]) == ("success", "req_1")
        models = response["response"]["models"]
        assert [m["value"] for m in models] == ["default", "opus[1m]", "sonnet", "haiku"]
        assert models[2]["resolvedModel"] == "claude-sonnet-5"
        sessions = set()
        for text in ("first", "second"):
            user = {
                "type": "user",
                "message": {"role": "user", "content": text},
                "parent_tool_use_id": None,
                "session_id": "",
            }
            proc.stdin.write(json.dumps(user).encode() + b"\n")
            proc.stdin.flush()
            kinds: list[str] = []
            while not kinds or kinds[-1] != "result":
                line = json.loads(proc.stdout.readline())
                kinds.append(line["type"])
                sessions.add(line["session_id"])
            assert kinds == ["system", "assistant", "result"]
            assert line["result"] == f"echo: {text}"
        assert len(sessions) == 1
        proc.stdin.close()
        assert proc.wait(5) == 0


def rpc_frame(message_id: int, method: str, params: dict[str, object]) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": message_id, "method": method, "params": params})
    return b"Content-Length: %d\r\n\r\n" % len(body.encode()) + body.encode()


def read_frames(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    while True:
        headers: dict[str, str] = {}
        while line := stream.readline().strip():
            key, _, value = line.decode().partition(":")
            headers[key.lower()] = value.strip()
        if not headers:
            return
        yield json.loads(stream.read(int(headers["content-length"])))


def test_copilot_headless_session_streams_and_goes_idle(tmp_path: Path) -> None:
    with subprocess.Popen(
        [COPILOT, "--headless", "--stdio", "--no-auto-update"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=clean_env(),
        start_new_session=True,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        frames = read_frames(proc.stdout)
        proc.stdin.write(rpc_frame(1, "connect", {}))
        proc.stdin.write(
            rpc_frame(
                2,
                "session.create",
                {
                    "model": "gpt-5-mini",
                    "streaming": True,
                    "workingDirectory": str(tmp_path),
                    "availableTools": [],
                },
            )
        )
        proc.stdin.flush()
        replies: dict[object, dict[str, Any]] = {}
        while 2 not in replies:
            frame = next(frames)
            if "id" in frame:
                replies[frame["id"]] = frame
        assert replies[1]["result"]["protocolVersion"] == 3
        session_id = replies[2]["result"]["sessionId"]
        proc.stdin.write(
            rpc_frame(
                3, "session.send", {"sessionId": session_id, "prompt": f"FAKE_REPLY={MULTIBYTE}"}
            )
        )
        proc.stdin.flush()
        deltas: list[str] = []
        kinds: list[str] = []
        for frame in frames:
            params = frame.get("params") if frame.get("method") == "session.event" else None
            event = params.get("event") if isinstance(params, dict) else None
            if not isinstance(event, dict):
                continue
            kinds.append(event["type"])
            if event["type"] == "assistant.message_delta":
                deltas.append(event["data"]["deltaContent"])
            if event["type"] == "session.idle":
                break
        assert "".join(deltas) == MULTIBYTE
        assert "assistant.usage" in kinds and kinds[-1] == "session.idle"
        proc.stdin.close()
        assert proc.wait(5) == 0


# -- processes -------------------------------------------------------------------------


def start_copilot_run(pid_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A copilot run that stays busy, and the pid of its worker."""
    proc = subprocess.Popen(
        [COPILOT, "--prompt=FAKE_SLEEP=20\nhi", "--output-format=json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=clean_env(FAKE_CLI_PID_DIR=str(pid_dir)),
    )
    assert wait_until(lambda: len(list(pid_dir.iterdir())) == 2)
    (worker,) = [int(p.name) for p in pid_dir.iterdir() if int(p.name) != proc.pid]
    return proc, worker


def test_copilot_loader_orphans_its_worker_on_plain_sigterm(tmp_path: Path) -> None:
    proc, worker = start_copilot_run(tmp_path)
    assert proc.stdout is not None
    with proc:
        try:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(5) == -signal.SIGTERM
            time.sleep(0.2)
            assert pid_alive(worker), "the worker must outlive its loader"
            os.set_blocking(proc.stdout.fileno(), False)
            with pytest.raises(BlockingIOError):  # not EOF: the orphan still holds the pipe
                while os.read(proc.stdout.fileno(), 65536):
                    pass
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(worker))


def test_copilot_process_group_kill_leaves_nothing(tmp_path: Path) -> None:
    proc, worker = start_copilot_run(tmp_path)
    assert proc.stdout is not None
    with proc:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(5)
        assert wait_until(lambda: not pid_alive(worker))
        proc.stdout.read()  # EOF: nobody holds the pipe any more
    assert not (tmp_path / str(worker)).exists(), "the worker shuts down cleanly on SIGTERM"


def test_pid_files_are_removed_at_normal_exit_and_runs_are_logged(tmp_path: Path) -> None:
    pid_dir, log = tmp_path / "pids", tmp_path / "log.jsonl"
    pid_dir.mkdir()
    pid_env = str(pid_dir)
    assert run(CLAUDE, "-p", "hi", FAKE_CLI_PID_DIR=pid_env, FAKE_CLI_LOG=str(log)).returncode == 0
    assert (
        run(COPILOT, "-p", "hi", "-s", FAKE_CLI_PID_DIR=pid_env, FAKE_CLI_LOG=str(log)).returncode
        == 0
    )
    assert list(pid_dir.iterdir()) == []
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["argv"] for r in records] == [["-p", "hi"], ["-p", "hi", "-s"]]
