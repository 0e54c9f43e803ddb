"""The client's tools for claude, both runners: an MCP endpoint for the request
(tools/mcp_endpoint), the flags that make it the CLI's only tools, and reading the
model's calls from stream-json.

The calls are taken from the ``assistant`` lines' ``tool_use`` blocks. The CLI sends each
block to the endpoint as soon as it has it, before the model's message is over, so the
answer ends at the message's ``message_stop``: then every call of the message (several,
when the model called in parallel) is known. The endpoint never answers a call; the CLI
is stopped right after (``until_tool_calls``), and the client runs the tools.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import Any

from copilot_cli_proxy.backends.base import BackendEvent, Finish, ToolCallEvent
from copilot_cli_proxy.backends.claude_output import ClaudeOutputParser
from copilot_cli_proxy.core.request import ChatRequest, Message
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.tools.mcp_endpoint import (
    McpEndpoint,
    cli_tool_name,
    client_tool_name,
    serve_tools,
)
from copilot_cli_proxy.tools.tool_use import offered_tools, tool_instruction

MCP_CONFIG_FILE = "mcp-config.json"

# The endpoint of the request being prepared. Set by ``serve_request_tools`` around the
# run, read by the argv builder that runs inside it (same task), reset after.
current_endpoint: ContextVar[McpEndpoint | None] = ContextVar("claude_tool_endpoint", default=None)


def with_tool_instruction(request: ChatRequest) -> ChatRequest:
    """The request with what tool_choice requires said in its system text."""
    text = tool_instruction(request)
    if not text:
        return request
    return replace(request, messages=(*request.messages, Message("system", text)))


def mcp_argv_parts(workdir: Path) -> tuple[Path | None, tuple[str, ...]]:
    """For build_claude_argv: the request's MCP config file (written to the private request
    dir, so its secret is in no argv) and the CLI's names of the tools, or nothing."""
    endpoint = current_endpoint.get()
    if endpoint is None:
        return None, ()
    path = workdir / MCP_CONFIG_FILE
    try:
        path.write_text(endpoint.config_json(), encoding="utf-8")
        path.chmod(0o600)
    except OSError as exc:
        raise ProxyError(
            "cli_start_failed",
            f"The server could not write the request's MCP config: {exc.strerror or exc}.",
        ) from exc
    return path, tuple(cli_tool_name(name) for name in endpoint.tool_names)


async def serve_request_tools(
    request: ChatRequest, run: AsyncGenerator[BackendEvent, None]
) -> AsyncGenerator[BackendEvent, None]:
    """``run`` (the CLI run for ``request``) with the request's MCP endpoint up around it.
    The run is closed (the CLI stopped) before the endpoint goes."""
    tools = offered_tools(request)
    async with serve_tools(tools) as endpoint:
        token = current_endpoint.set(endpoint)
        try:
            async with aclosing(until_tool_calls(run)) as events:
                async for event in events:
                    try:
                        yield event
                    except GeneratorExit:
                        # Closed by the consumer: leave the endpoint's task groups the
                        # normal way (GeneratorExit through them would be an error).
                        break
        finally:
            current_endpoint.reset(token)


async def until_tool_calls(
    events: AsyncGenerator[BackendEvent, None],
) -> AsyncGenerator[BackendEvent, None]:
    """Stop reading (which stops the CLI) once the answer ended with tool calls: the CLI
    would otherwise wait on a tool result that never comes."""
    async with aclosing(events) as run:
        async for event in run:
            yield event
            if isinstance(event, Finish) and event.reason == "tool_calls":
                return


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
