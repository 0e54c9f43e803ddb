"""An MCP server that offers the client's tools to a CLI, for the length of ONE request.

It listens on its own loopback socket (127.0.0.1, an ephemeral port), never on the API's
listener, and answers only at ``/mcp/<secret>``: a path nobody else knows, made for this
request and gone with it (the socket is closed when the request ends). Any other path
is a 404.

It lists exactly the client's tools and runs none of them: a ``tools/call`` is recorded
and held unanswered until the endpoint closes, so nothing the server could return reaches
the model. The backend ends the CLI's turn as soon as the model has called, and the
answer ends with those calls; the client runs them.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import Receive, Scope, Send

from copilot_cli_proxy.core.request import ToolSpec

SERVER_NAME = "client"  # the CLI names the tools mcp__client__<name>
NOT_RUN = "The server does not run tools; the client runs them."


@dataclass(slots=True)
class McpEndpoint:
    url: str
    path: str
    tool_names: tuple[str, ...]
    # (name, arguments) of each tools/call the CLI made, in order
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    closing: anyio.Event = field(default_factory=anyio.Event)

    def config_json(self) -> str:
        """What ``--mcp-config`` takes: this endpoint as the CLI's only MCP server."""
        servers = {SERVER_NAME: {"type": "http", "url": self.url}}
        return json.dumps({"mcpServers": servers})


def cli_tool_name(name: str) -> str:
    """How the claude CLI names an MCP tool of this endpoint (for ``--allowedTools``)."""
    return f"mcp__{SERVER_NAME}__{name}"


def client_tool_name(cli_name: str) -> str:
    """The client's name for a tool the CLI named ``mcp__client__<name>``."""
    return cli_name.removeprefix(f"mcp__{SERVER_NAME}__")


def _mcp_tool(spec: ToolSpec) -> types.Tool:
    schema = dict(spec.parameters) or {"type": "object", "properties": {}}
    schema.setdefault("type", "object")
    return types.Tool(name=spec.name, description=spec.description or None, input_schema=schema)


def _mcp_server(tools: tuple[ToolSpec, ...], endpoint: McpEndpoint) -> Server[Any]:
    listed = [_mcp_tool(t) for t in tools]

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        endpoint.calls.append((params.name, dict(params.arguments or {})))
        # Held until the request ends: the CLI is stopped before this returns.
        await endpoint.closing.wait()
        return types.CallToolResult(content=[types.TextContent(text=NOT_RUN)], is_error=True)

    return Server(SERVER_NAME, on_list_tools=list_tools, on_call_tool=call_tool)


class _QuietServer(uvicorn.Server):
    """The API server owns the process's signals; this one must not take them over."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serve_tools(tools: tuple[ToolSpec, ...]) -> AsyncIterator[McpEndpoint]:
    """Serve ``tools`` at a fresh secret path until the block ends."""
    path = f"/mcp/{secrets.token_urlsafe(32)}"
    sock = _loopback_socket()
    port = sock.getsockname()[1]
    endpoint = McpEndpoint(
        url=f"http://127.0.0.1:{port}{path}", path=path, tool_names=tuple(t.name for t in tools)
    )
    manager = StreamableHTTPSessionManager(
        _mcp_server(tools, endpoint), json_response=True, stateless=True
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if not secrets.compare_digest(scope.get("path", "").encode(), path.encode()):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        await manager.handle_request(scope, receive, send)

    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = _QuietServer(config)
    try:
        async with manager.run(), anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            try:
                yield endpoint
            finally:
                endpoint.closing.set()
                server.should_exit = True
                server.force_exit = True  # a held call must not hold up the close
    finally:
        sock.close()
