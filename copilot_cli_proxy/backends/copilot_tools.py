"""The client's tools for copilot, both runners, and reading the model's calls.

- Persistent (headless JSON-RPC): the tools are the session's "custom tools", declared
  at ``session.create`` (``tools``: name, description, JSON Schema ``parameters``), and
  they are the session's only tools (``availableTools``). Each is declared as
  overriding a built-in tool of the same name: the CLI refuses a session where a
  client's tool is called like one of its own (``bash``, ``view``…), and the client's
  tool is the one the model must get.
- One-shot: the request's MCP endpoint (tools/mcp_endpoint) is given with
  ``--additional-mcp-config=@<file>``; copilot names its tools ``client-<name>``, and
  ``--available-tools`` lists those names only.

Either way the model's calls come in the ``assistant.message`` event that announces them
(``toolRequests``, all of them when the model called several at once). The answer ends
there, and the turn is ended (the session aborted, the one-shot process stopped) while
the CLI waits: on a permission to run them that is never given (persistent), or on the
endpoint, which holds the call unanswered (one-shot). Nothing is run here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from copilot_cli_proxy.backends.base import BackendEvent, Finish, ToolCallEvent
from copilot_cli_proxy.backends.copilot_output import CopilotOutputParser
from copilot_cli_proxy.core.request import ToolSpec
from copilot_cli_proxy.tools.mcp_endpoint import SERVER_NAME

NOT_RUN = "The server does not run tools; the client runs them."
CUSTOM_TOOL_PERMISSION = "custom-tool"


def custom_tools(tools: tuple[ToolSpec, ...]) -> list[dict[str, Any]]:
    """``session.create``'s ``tools``: the client's functions as copilot custom tools."""
    return [
        {
            "name": tool.name,
            "description": tool.description,
            "parameters": dict(tool.parameters) or {"type": "object", "properties": {}},
            # Without it, a name the CLI has built in ("bash") fails the whole turn.
            "overridesBuiltInTool": True,
        }
        for tool in tools
    ]


def mcp_tool_name(name: str) -> str:
    """How copilot one-shot names a tool of the request's MCP endpoint."""
    return f"{SERVER_NAME}-{name}"


def _client_name(request: Mapping[str, Any]) -> str | None:
    if request.get("mcpServerName") == SERVER_NAME and isinstance(request.get("mcpToolName"), str):
        return str(request["mcpToolName"])
    name = request.get("name")
    return name if isinstance(name, str) and name else None


def tool_requests(data: Mapping[str, Any]) -> list[ToolCallEvent]:
    """The calls of an ``assistant.message`` (``toolRequests``), in the client's names."""
    requests = data.get("toolRequests")
    calls = []
    for request in requests if isinstance(requests, list) else []:
        if not isinstance(request, dict):
            continue
        call_id, name = request.get("toolCallId"), _client_name(request)
        if not isinstance(call_id, str) or not call_id or name is None:
            continue
        arguments = request.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments or {}, ensure_ascii=False)
        calls.append(ToolCallEvent(call_id, name, arguments))
    return calls


class CopilotToolParser(CopilotOutputParser):
    """Copilot's events with the client's tools (``offered``, the client's names): text
    as usual, and the calls of the first message that calls any of them, then the usage
    so far and ``Finish("tool_calls")``. After it, ``calls_done`` is set and nothing more
    is read: the runner ends the turn.

    A call of a tool the client did not offer (a model may name one it knows, such as
    ``bash``) is not the client's to run: the CLI has no such tool and answers the model
    so itself, and the turn goes on."""

    def __init__(self, login_error: str, offered: tuple[str, ...]) -> None:
        super().__init__(login_error)
        self.offered = frozenset(offered)
        self.calls_done = False

    def feed(self, obj: dict[str, Any]) -> list[BackendEvent]:
        if self.calls_done:
            return []
        events = super().feed(obj)
        data = obj.get("data")
        if obj.get("type") == "assistant.message" and isinstance(data, dict):
            calls = [c for c in tool_requests(data) if c.name in self.offered]
            if calls:
                self.calls_done = True
                return [*events, *calls, self.session_usage(), Finish("tool_calls")]
        return events
