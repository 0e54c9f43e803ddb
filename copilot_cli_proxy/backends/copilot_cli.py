"""GitHub Copilot CLI, one process per request: ``copilot --prompt=… --output-format=json``.

Copilot takes its prompt only as an option value, so the prompt is argv: always in
the ``--prompt=<text>`` form, so that a prompt starting with ``-`` stays data.
Linux limits one argv string to 128 KiB; larger conversations get a clear 413.
System text goes to AGENTS.md in the request dir, which copilot loads as
instructions. Token counts come from ``--usage-output-file`` (the JSON event
stream carries output tokens only).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from copilot_cli_proxy.backends.base import BackendEvent, Finish, ModelInfo, TextDelta, Usage
from copilot_cli_proxy.backends.cli_backend import CliBackend, Invocation, OutputParser
from copilot_cli_proxy.backends.models import owned_by
from copilot_cli_proxy.backends.prompt import CliPrompt, build_cli_prompt
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.requests import ChatRequest
from copilot_cli_proxy.settings import Settings

MAX_ARG_BYTES = 131072  # Linux MAX_ARG_STRLEN, including the terminating NUL
PROMPT_FLAG = "--prompt="
USAGE_FILE = "usage.json"
INSTRUCTIONS_FILE = "AGENTS.md"
DISCOVERY_TIMEOUT_S = 60.0

# Tools off: deny rules win over every allow rule, even --allow-all-tools.
DENY_ALL_TOOLS = ("--deny-tool=shell", "--deny-tool=write", "--deny-tool=url")

LOGIN_HINT = (
    "The copilot CLI on the server is not logged in. The operator must log it in once: "
    "run `copilot-cli-proxy login copilot` (or `copilot login`) as the user that runs the "
    "server, or set COPILOT_GITHUB_TOKEN (or GH_TOKEN) in the server's environment to a "
    "token with Copilot access."
)
AUTH_ERROR_MARKERS = (
    "No authentication information found",
    "No GitHub OAuth token",
    "Not authenticated",
)


def build_copilot_argv(
    cli: str,
    *,
    prompt: str,
    model: str,
    usage_file: Path,
    allowed_tools: tuple[str, ...] = (),
    reasoning_effort: str | None = None,
) -> list[str]:
    """argv for one run. Every value uses ``--flag=value`` so none can become a flag."""
    argv = [
        cli,
        PROMPT_FLAG + prompt,
        "--output-format=json",
        "--stream=on",
        f"--model={model}",
        "--no-color",
        "--no-auto-update",
        "--no-ask-user",
        "--disable-builtin-mcps",
        "--disallow-temp-dir",
        f"--usage-output-file={usage_file}",
    ]
    if allowed_tools:
        argv += [f"--available-tools={tool}" for tool in allowed_tools]
        argv += [f"--allow-tool={tool}" for tool in allowed_tools]
    else:
        argv += DENY_ALL_TOOLS
    if reasoning_effort:
        argv.append(f"--reasoning-effort={reasoning_effort}")
    return argv


def redact_argv(argv: list[str]) -> list[str]:
    return [
        f"{PROMPT_FLAG}<{len(arg) - len(PROMPT_FLAG)} chars>"
        if arg.startswith(PROMPT_FLAG)
        else arg
        for arg in argv
    ]


def prompt_arg_fits(prompt: str) -> bool:
    return len((PROMPT_FLAG + prompt).encode("utf-8")) + 1 <= MAX_ARG_BYTES


def usage_from_metrics(metrics: dict[str, Any]) -> Usage | None:
    """Sum ``modelMetrics.*.usage`` from ``--usage-output-file``."""
    model_metrics = metrics.get("modelMetrics")
    if not isinstance(model_metrics, dict) or not model_metrics:
        return None
    totals = {"inputTokens": 0, "outputTokens": 0, "cacheReadTokens": 0, "reasoningTokens": 0}
    seen: set[str] = set()
    for entry in model_metrics.values():
        usage = entry.get("usage") if isinstance(entry, dict) else None
        if not isinstance(usage, dict):
            continue
        for key in totals:
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                totals[key] += value
                seen.add(key)
    if not {"inputTokens", "outputTokens"} <= seen:
        return None
    return Usage(
        prompt_tokens=totals["inputTokens"],
        completion_tokens=totals["outputTokens"],
        cached_prompt_tokens=totals["cacheReadTokens"] if "cacheReadTokens" in seen else None,
        reasoning_tokens=totals["reasoningTokens"] if "reasoningTokens" in seen else None,
    )


def _is_auth_failure(text: str) -> bool:
    return any(marker in text for marker in AUTH_ERROR_MARKERS)


def _first_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:count])


class CopilotOutputParser(OutputParser):
    """``--output-format json``: session events, then one ``result`` line."""

    def __init__(self) -> None:
        self._streamed_messages: set[str] = set()
        self._output_tokens: int | None = None
        self._result: dict[str, Any] | None = None
        # Headless sessions only: per-call token counts, and the end-of-turn marker.
        self._call_usage: dict[str, int] = {}
        self.idle = False

    def feed(self, obj: dict[str, Any]) -> list[BackendEvent]:
        kind = obj.get("type")
        raw_data = obj.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        if kind == "assistant.message_delta":
            text = data.get("deltaContent")
            self._streamed_messages.add(str(data.get("messageId")))
            return [TextDelta(text)] if isinstance(text, str) and text else []
        if kind == "assistant.message":
            tokens = data.get("outputTokens")
            if isinstance(tokens, int) and not isinstance(tokens, bool):
                self._output_tokens = (self._output_tokens or 0) + tokens
            content = data.get("content")
            # Without streaming deltas (e.g. a model that does not stream), the whole
            # message is the only copy of the text.
            if str(data.get("messageId")) not in self._streamed_messages and content:
                return [TextDelta(str(content))]
            return []
        if kind == "session.error":
            message = str(data.get("message") or "unknown error")
            if _is_auth_failure(message):
                raise ProxyError("cli_not_logged_in", LOGIN_HINT)
            raise ProxyError("cli_failed", f"The copilot CLI reported an error: {message}")
        if kind == "assistant.usage":
            for key in ("inputTokens", "outputTokens", "cacheReadTokens", "reasoningTokens"):
                value = data.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    self._call_usage[key] = self._call_usage.get(key, 0) + value
            return []
        if kind == "session.idle":
            self.idle = True
            return []
        if kind == "result":
            self._result = obj
        return []

    def session_usage(self) -> Usage:
        """Usage of a headless turn: the sum of its ``assistant.usage`` events."""
        calls = self._call_usage
        if "inputTokens" not in calls or "outputTokens" not in calls:
            return Usage(completion_tokens=self._output_tokens)
        return Usage(
            prompt_tokens=calls["inputTokens"],
            completion_tokens=calls["outputTokens"],
            cached_prompt_tokens=calls.get("cacheReadTokens"),
            reasoning_tokens=calls.get("reasoningTokens"),
        )

    def finish(self, exit_code: int, stderr: str, workdir: Path) -> list[BackendEvent]:
        if _is_auth_failure(stderr):
            raise ProxyError("cli_not_logged_in", LOGIN_HINT)
        result_code = self._result.get("exitCode") if self._result else None
        if exit_code != 0 or (isinstance(result_code, int) and result_code != 0):
            detail = _first_lines(stderr) or f"exit code {exit_code}"
            raise ProxyError("cli_failed", f"The copilot CLI failed: {detail}")
        if self._result is None:
            raise ProxyError("cli_failed", "The copilot CLI ended without a result.")
        if self._result.get("outcome") == "blocked":
            blocker = self._result.get("blocker") or "a permission it does not have"
            raise ProxyError(
                "cli_failed", f"The copilot CLI could not finish: blocked by {blocker}"
            )
        usage = None
        usage_path = workdir / USAGE_FILE
        if usage_path.is_file():
            try:
                metrics = json.loads(usage_path.read_text("utf-8"))
            except (OSError, ValueError):
                metrics = None
            usage = usage_from_metrics(metrics) if isinstance(metrics, dict) else None
        if usage is None:
            usage = Usage(completion_tokens=self._output_tokens)
        return [usage, Finish("stop")]


# `copilot help config`: the `model` setting lists its ids as `    - "<id>"` lines.
_CONFIG_MODEL_LINE = re.compile(r'^    - "([^"]+)"$')
# Older CLIs: `--model <model>  Set the AI model to use (choices: "a", "b", …)` in --help.
_HELP_CHOICES = re.compile(r"--model <model>[^(]*\(choices:(?P<body>[^)]*)\)", re.DOTALL)


def parse_config_help_models(text: str) -> list[str]:
    ids: list[str] = []
    in_model_block = False
    for line in text.splitlines():
        if line.startswith("  `"):
            in_model_block = line.startswith("  `model`:")
            continue
        match = _CONFIG_MODEL_LINE.match(line)
        if in_model_block and match:
            ids.append(match.group(1))
    return ids


def parse_help_choices_models(text: str) -> list[str]:
    match = _HELP_CHOICES.search(text)
    return re.findall(r'"([^"]+)"', match.group("body")) if match else []


def check_prompt_arg(prompt: str) -> None:
    """The prompt must be one spawnable argument: no NUL, within 128 KiB."""
    if "\x00" in prompt:
        # An argv string ends at its first NUL: the spawn itself would fail.
        raise ProxyError(
            "invalid_request",
            "The conversation contains a NUL character, which the copilot CLI cannot "
            "receive (its prompt is a command-line argument).",
            param="messages",
        )
    if not prompt_arg_fits(prompt):
        raise ProxyError(
            "prompt_too_large",
            f"The conversation is {len(prompt.encode('utf-8'))} bytes; the copilot CLI "
            f"takes its prompt as one argument, limited to {MAX_ARG_BYTES // 1024} KiB. "
            "Shorten the conversation.",
            param="messages",
        )


class CopilotCliBackend(CliBackend):
    name = "copilot"
    executable = "copilot"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.copilot_cli_path)

    def check_request(self, request: ChatRequest) -> None:
        check_prompt_arg(build_cli_prompt(request.messages).prompt)

    def prepare(
        self, workdir: Path, prompt: CliPrompt, model: str, request: ChatRequest, cli: str
    ) -> Invocation:
        check_prompt_arg(prompt.prompt)
        if prompt.system:
            (workdir / INSTRUCTIONS_FILE).write_text(prompt.system, encoding="utf-8")
        argv = build_copilot_argv(
            cli,
            prompt=prompt.prompt,
            model=model,
            usage_file=workdir / USAGE_FILE,
            allowed_tools=self.settings.allowed_tools,
            reasoning_effort=request.reasoning_effort,
        )
        return Invocation(argv=argv, stdin=None, redacted_argv=redact_argv(argv))

    def new_parser(self) -> CopilotOutputParser:
        return CopilotOutputParser()

    async def _discover_models(self) -> list[ModelInfo]:
        ids = parse_config_help_models(
            await self.run_text("help", "config", limit_s=DISCOVERY_TIMEOUT_S)
        )
        if not ids:
            ids = parse_help_choices_models(
                await self.run_text("--help", limit_s=DISCOVERY_TIMEOUT_S)
            )
        if not ids:
            raise ValueError("found no model list in `copilot help config` or `copilot --help`")
        return [ModelInfo(id=i, owned_by=owned_by(i, "github-copilot")) for i in ids]
