"""Claude Code CLI, one process per request:
``claude -p --output-format=stream-json --verbose --include-partial-messages``.

The prompt goes on stdin (claude reads stdin to EOF when no positional prompt is
given), so it is never argv and has no size limit. System text goes to a file in
the request dir passed with ``--system-prompt-file``. Every option uses the
``--flag=value`` form: claude's variadic options (``--tools <tools...>``) would
otherwise swallow whatever follows them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from copilot_cli_proxy.backends.base import BackendEvent, Finish, ModelInfo, TextDelta, Usage
from copilot_cli_proxy.backends.cli_backend import (
    CliBackend,
    Invocation,
    OutputParser,
    parse_json_line,
)
from copilot_cli_proxy.backends.prompt import CliPrompt
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.requests import ChatRequest
from copilot_cli_proxy.settings import Settings

SYSTEM_PROMPT_FILE = "system-prompt.md"
DISCOVERY_TIMEOUT_S = 60.0
EFFORTS = ("low", "medium", "high", "xhigh", "max")
INITIALIZE_REQUEST_ID = "models_1"

LOGIN_HINT = (
    "The claude CLI on the server is not logged in. The operator must log it in once: run "
    "`copilot-cli-proxy login claude` (or `claude auth login`) as the user that runs the "
    "server, or create a long-lived token with `claude setup-token` and set "
    "CLAUDE_CODE_OAUTH_TOKEN (or ANTHROPIC_API_KEY) in the server's environment."
)

# assistant.error values (stream-json) → our error code
_ASSISTANT_ERRORS: dict[str, str] = {
    "authentication_failed": "cli_not_logged_in",
    "oauth_org_not_allowed": "cli_not_logged_in",
    "cloud_credential_error": "cli_not_logged_in",
    "rate_limit": "rate_limit_exceeded",
    "model_not_found": "model_not_found",
    "overloaded": "cli_unavailable",
    "server_error": "cli_unavailable",
    "billing_error": "cli_unavailable",
    "account_on_hold": "cli_unavailable",
    "verification_required": "cli_unavailable",
    "invalid_request": "cli_failed",
}
_STOP_REASONS = {"max_tokens": "length", "refusal": "content_filter"}


def build_claude_argv(
    cli: str,
    *,
    model: str,
    system_prompt_file: Path,
    allowed_tools: tuple[str, ...] = (),
    effort: str | None = None,
) -> list[str]:
    tools = ",".join(allowed_tools)
    argv = [
        cli,
        "-p",
        "--output-format=stream-json",
        "--verbose",
        "--include-partial-messages",
        f"--model={model}",
        f"--system-prompt-file={system_prompt_file}",
        # Tools off unless the operator listed some: no built-in tool, no MCP server,
        # and anything not pre-approved is denied instead of asked for.
        f"--tools={tools}",
        "--permission-mode=dontAsk",
        "--strict-mcp-config",
        "--no-session-persistence",
    ]
    if allowed_tools:
        argv.append(f"--allowedTools={tools}")
    if effort in EFFORTS:
        argv.append(f"--effort={effort}")
    return argv


def usage_from_result(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None

    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    if not isinstance(usage.get("input_tokens"), int) or not isinstance(
        usage.get("output_tokens"), int
    ):
        return None
    cache_read = count("cache_read_input_tokens")
    return Usage(
        prompt_tokens=count("input_tokens") + count("cache_creation_input_tokens") + cache_read,
        completion_tokens=count("output_tokens"),
        cached_prompt_tokens=cache_read,
    )


class ClaudeOutputParser(OutputParser):
    """stream-json: system/init, stream_event…, assistant, result."""

    def __init__(self) -> None:
        self._message_id: str | None = None
        self._streamed_ids: set[str] = set()
        self._assistant_error: str | None = None
        self._stop_reason: str | None = None
        self._noise: list[str] = []
        self.done = False

    def feed_text(self, line: str) -> None:
        self._noise.append(line)

    def feed(self, obj: dict[str, Any]) -> list[BackendEvent]:
        kind = obj.get("type")
        if obj.get("parent_tool_use_id"):
            return []  # a sub-agent's output is not the answer
        if kind == "stream_event":
            return self._stream_event(obj.get("event"))
        if kind == "assistant":
            return self._assistant(obj)
        if kind == "result":
            return self._result(obj)
        return []

    def _stream_event(self, event: Any) -> list[BackendEvent]:
        if not isinstance(event, dict):
            return []
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            self._message_id = str(message.get("id")) if isinstance(message, dict) else None
        elif kind == "content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    if self._message_id is not None:
                        self._streamed_ids.add(self._message_id)
                    return [TextDelta(text)]
        elif kind == "message_delta":
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self._stop_reason = str(delta["stop_reason"])
        return []

    def _assistant(self, obj: dict[str, Any]) -> list[BackendEvent]:
        if obj.get("error"):
            self._assistant_error = str(obj["error"])
            return []
        message = obj.get("message")
        if not isinstance(message, dict):
            return []
        if message.get("stop_reason"):
            self._stop_reason = str(message["stop_reason"])
        if str(message.get("id")) in self._streamed_ids:
            return []
        # No partial events were seen for this message: its text arrives only here.
        content = message.get("content")
        texts = [
            block.get("text", "")
            for block in (content if isinstance(content, list) else [])
            if isinstance(block, dict) and block.get("type") == "text"
        ]
        text = "".join(t for t in texts if isinstance(t, str))
        return [TextDelta(text)] if text else []

    def _result(self, obj: dict[str, Any]) -> list[BackendEvent]:
        self.done = True
        raw_text = obj.get("result")
        text = raw_text if isinstance(raw_text, str) else ""
        if obj.get("is_error") or obj.get("subtype") != "success":
            raise self._error(text, obj)
        reason = _STOP_REASONS.get(obj.get("stop_reason") or self._stop_reason or "", "stop")
        usage = usage_from_result(obj.get("usage")) or Usage()
        return [usage, Finish(reason)]  # type: ignore[arg-type]

    def _error(self, text: str, obj: dict[str, Any]) -> ProxyError:
        errors = obj.get("errors")
        detail = text or (
            "; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else ""
        )
        detail = detail or str(obj.get("subtype") or "unknown error")
        if text.startswith("Not logged in") or text.startswith("Invalid API key"):
            return ProxyError("cli_not_logged_in", LOGIN_HINT)
        code = _ASSISTANT_ERRORS.get(self._assistant_error or "", "cli_failed")
        if code == "cli_not_logged_in":
            return ProxyError(code, LOGIN_HINT)
        if code == "model_not_found":
            return ProxyError(code, f"The claude CLI could not use the model: {detail}", "model")
        return ProxyError(code, f"The claude CLI reported an error: {detail}")

    def finish(self, exit_code: int, stderr: str, workdir: Path) -> list[BackendEvent]:
        if self.done:
            return []
        noise = " ".join(self._noise)
        if noise.startswith("Not logged in"):
            raise ProxyError("cli_not_logged_in", LOGIN_HINT)
        detail = " ".join(line.strip() for line in stderr.strip().splitlines()[:3])
        raise ProxyError(
            "cli_failed",
            f"The claude CLI ended without an answer (exit code {exit_code})"
            + (f": {detail}" if detail else "."),
        )


def initialize_request_line() -> bytes:
    request = {
        "type": "control_request",
        "request_id": INITIALIZE_REQUEST_ID,
        "request": {"subtype": "initialize", "hooks": None},
    }
    return json.dumps(request).encode() + b"\n"


def parse_initialize_models(stdout: str) -> list[ModelInfo]:
    """Models from the ``initialize`` control_response: ``response.response.models[]``."""
    for line in stdout.splitlines():
        obj = parse_json_line(line.encode("utf-8"))
        if not obj or obj.get("type") != "control_response":
            continue
        response = obj.get("response")
        if not isinstance(response, dict) or response.get("subtype") != "success":
            continue
        inner = response.get("response")
        models = inner.get("models") if isinstance(inner, dict) else None
        if not isinstance(models, list):
            continue
        found: list[ModelInfo] = []
        for entry in models:
            if not isinstance(entry, dict) or not isinstance(entry.get("value"), str):
                continue
            resolved = entry.get("resolvedModel")
            found.append(
                ModelInfo(
                    id=entry["value"],
                    owned_by="anthropic",
                    display_name=entry.get("displayName")
                    if isinstance(entry.get("displayName"), str)
                    else None,
                    aliases=(resolved,) if isinstance(resolved, str) else (),
                )
            )
        return found
    return []


class ClaudeCliBackend(CliBackend):
    name = "claude"
    executable = "claude"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.claude_cli_path)

    def prepare(
        self, workdir: Path, prompt: CliPrompt, model: str, request: ChatRequest, cli: str
    ) -> Invocation:
        system_file = workdir / SYSTEM_PROMPT_FILE
        system_file.write_text(prompt.system, encoding="utf-8")
        argv = build_claude_argv(
            cli,
            model=model,
            system_prompt_file=system_file,
            allowed_tools=self.settings.allowed_tools,
            effort=request.reasoning_effort,
        )
        return Invocation(argv=argv, stdin=prompt.prompt.encode("utf-8"), redacted_argv=argv)

    def new_parser(self) -> ClaudeOutputParser:
        return ClaudeOutputParser()

    async def _discover_models(self) -> list[ModelInfo]:
        stdout = await self.run_text(
            "-p",
            "--input-format=stream-json",
            "--output-format=stream-json",
            "--verbose",
            stdin=initialize_request_line(),
            limit_s=DISCOVERY_TIMEOUT_S,
        )
        models = parse_initialize_models(stdout)
        if not models:
            raise ValueError("the claude CLI's initialize reply listed no models")
        return models
