"""Reading copilot's output: the JSON event stream of one run (``-p --output-format
json``, and the same events in a headless session), its usage file, and the model list
in its help text. Pure functions and a parser, no processes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from copilot_cli_proxy.backends.base import BackendEvent, Finish, TextDelta, Usage
from copilot_cli_proxy.backends.cli_backend import OutputParser
from copilot_cli_proxy.backends.copilot_auth import LOGIN_HINT, is_auth_failure
from copilot_cli_proxy.errors import ProxyError

USAGE_FILE = "usage.json"


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


def _first_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:count])


class CopilotOutputParser(OutputParser):
    """``--output-format json``: session events, then one ``result`` line."""

    def __init__(self, login_error: str = LOGIN_HINT) -> None:
        # What a not-logged-in failure tells the client (the same in both runners).
        self._login_error = login_error
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
            if is_auth_failure(message):
                raise ProxyError("cli_not_logged_in", self._login_error)
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
        if is_auth_failure(stderr):
            raise ProxyError("cli_not_logged_in", self._login_error)
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
