"""The client's tools for claude, both runners: reading the model's calls from
stream-json (the request's MCP endpoint around the run is tools/request_tools).

The calls are taken from the ``assistant`` lines' ``tool_use`` blocks. The CLI sends each
block to the endpoint as soon as it has it, before the model's message is over, so the
answer ends at the message's ``message_stop``: then every call of the message (several,
when the model called in parallel) is known. The endpoint never answers a call; the CLI
is stopped right after (``until_tool_calls``), and the client runs the tools.
"""

from __future__ import annotations

import json
from typing import Any

from copilot_cli_proxy.backends.base import BackendEvent, Finish, ToolCallEvent
from copilot_cli_proxy.backends.claude_output import ClaudeOutputParser
from copilot_cli_proxy.tools.mcp_endpoint import (
    cli_tool_name,
    client_tool_name,
)


def tool_uses(message: dict[str, Any]) -> list[ToolCallEvent]:
    """The ``tool_use`` blocks of an ``assistant`` message, as calls in the client's names."""
    content = message.get("content")
    calls = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict) or block.get("type") != "tool_use":
            continue
        call_id, name = block.get("id"), block.get("name")
        if not isinstance(call_id, str) or not isinstance(name, str):
            continue
        if not name.startswith(cli_tool_name("")):
            # One of the CLI's own: StructuredOutput (--json-schema) is how the answer
            # comes with response_format; it is read from the result line, not a call.
            continue
        arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
        calls.append(ToolCallEvent(call_id, client_tool_name(name), arguments))
    return calls


class ClaudeToolParser(ClaudeOutputParser):
    """stream-json with the client's tools: text as usual, and the message's tool calls."""

    def __init__(self, *, structured: bool = False) -> None:
        super().__init__(structured=structured)
        self._calls: dict[str, ToolCallEvent] = {}

    def feed(self, obj: dict[str, Any]) -> list[BackendEvent]:
        if self.done or obj.get("parent_tool_use_id"):
            return []
        kind = obj.get("type")
        message = obj.get("message")
        if kind == "assistant" and isinstance(message, dict):
            for call in tool_uses(message):
                self._calls.setdefault(call.id, call)
        if self._calls and _ends_message(obj):
            self.done = True
            return [*self._calls.values(), Finish("tool_calls")]
        return super().feed(obj)


def _ends_message(obj: dict[str, Any]) -> bool:
    if obj.get("type") == "result":
        return True
    event = obj.get("event")
    return (
        obj.get("type") == "stream_event"
        and isinstance(event, dict)
        and event.get("type") == "message_stop"
    )
