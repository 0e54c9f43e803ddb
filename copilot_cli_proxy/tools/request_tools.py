"""The client's tools around one CLI run, for every CLI backend: the request's MCP endpoint
up for the length of the run (tools/mcp_endpoint), its config file for the CLI, what
tool_choice asks said in the system text, and the run stopped at the model's calls.

The endpoint never answers a call: the CLI is stopped right after the calls are known
(``until_tool_calls``), and the client runs the tools.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path

from copilot_cli_proxy.core.request import ChatRequest, Message
from copilot_cli_proxy.core.types import BackendEvent, Finish
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.tools.mcp_endpoint import McpEndpoint, cli_tool_name, serve_tools
from copilot_cli_proxy.tools.tool_use import offered_tools, tool_instruction

MCP_CONFIG_FILE = "mcp-config.json"

# The endpoint of the request being prepared. Set by ``serve_request_tools`` around the
# run, read by the argv builder that runs inside it (same task), reset after.
current_endpoint: ContextVar[McpEndpoint | None] = ContextVar("request_tool_endpoint", default=None)


def with_tool_instruction(request: ChatRequest) -> ChatRequest:
    """The request with what tool_choice requires said in its system text."""
    text = tool_instruction(request)
    if not text:
        return request
    return replace(request, messages=(*request.messages, Message("system", text)))


def mcp_argv_parts(workdir: Path) -> tuple[Path | None, tuple[str, ...]]:
    """For the argv builders: the request's MCP config file (written to the private request
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


def run_with_request_tools(
    request: ChatRequest,
    run: Callable[[ChatRequest], AsyncGenerator[BackendEvent, None]],
) -> AsyncGenerator[BackendEvent, None]:
    """``run(request)``, and with the client's tools: the request with what tool_choice
    asks in its system text, run inside its MCP endpoint."""
    if not offered_tools(request):
        return run(request)
    request = with_tool_instruction(request)
    return serve_request_tools(request, run(request))
