"""An OpenAI-compatible upstream's streamed chunks as backend events.

The chat route relays such an upstream's chunks as they are; a caller that needs events
instead (``OpenAIUpstreamBackend.stream``: a failover pool, another API surface) reads
them through these pure functions.
"""

from __future__ import annotations

from typing import Any

from copilot_cli_proxy.core.types import (
    BackendEvent,
    Finish,
    FinishReason,
    TextDelta,
    ToolCallEvent,
    Usage,
)

FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_of(data: dict[str, Any]) -> Usage | None:
    """The upstream's ``usage`` object as ours (for the request log and metrics)."""
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    return Usage(
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        cached_prompt_tokens=_count(
            prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None
        ),
        reasoning_tokens=_count(
            completion_details.get("reasoning_tokens")
            if isinstance(completion_details, dict)
            else None
        ),
    )


class ToolCallAssembler:
    """Tool calls arrive in pieces (``delta.tool_calls[i]``); whole ones go out at the end."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, str]] = {}

    def feed(self, pieces: Any) -> None:
        for piece in pieces if isinstance(pieces, list) else []:
            if not isinstance(piece, dict):
                continue
            index = _count(piece.get("index")) or 0
            call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            function = piece.get("function")
            function = function if isinstance(function, dict) else {}
            call["id"] = call["id"] or str(piece.get("id") or "")
            call["name"] = call["name"] or str(function.get("name") or "")
            call["arguments"] += str(function.get("arguments") or "")

    def done(self) -> list[ToolCallEvent]:
        return [
            ToolCallEvent(c["id"], c["name"], c["arguments"]) for _, c in sorted(self.calls.items())
        ]


def events_of(chunk: dict[str, Any], calls: ToolCallAssembler) -> list[BackendEvent]:
    """One streamed chunk (its first choice) as events; tool calls go out with the finish."""
    found: list[BackendEvent] = []
    usage = usage_of(chunk)
    choices = chunk.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if isinstance(choice, dict):
        delta = choice.get("delta")
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str) and content:
                found.append(TextDelta(content))
            calls.feed(delta.get("tool_calls"))
    if usage is not None:
        found.append(usage)
    reason = choice.get("finish_reason") if isinstance(choice, dict) else None
    if isinstance(reason, str):
        found += calls.done()
        found.append(Finish(FINISH_REASONS.get(reason, "stop")))
    return found
