"""What ``tools`` / ``tool_choice`` / ``parallel_tool_calls`` mean for any backend that
offers the client's tools: which tools the model gets, what the system text must add,
and the checks on the answer (``follow_tool_choice``).

Nothing here runs a tool: a call ends the answer, and the client runs it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

from copilot_cli_proxy.core.request import ChatRequest, ToolSpec
from copilot_cli_proxy.core.types import BackendEvent, Finish, TextDelta, ToolCallEvent
from copilot_cli_proxy.errors import ProxyError


def named_choice(choice: Any) -> str | None:
    """The function a ``{"type": "function", "function": {"name": …}}`` choice names."""
    if not isinstance(choice, Mapping):
        return None
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    return name if isinstance(name, str) else None


def offered_tools(request: ChatRequest) -> tuple[ToolSpec, ...]:
    """The tools the model gets: none for "none", only the named one for a named choice."""
    if request.tool_choice == "none":
        return ()
    named = named_choice(request.tool_choice)
    if named is not None:
        return tuple(t for t in request.tools if t.name == named)
    return request.tools


def tool_instruction(request: ChatRequest) -> str:
    """System text that asks for the call tool_choice requires (empty when none is)."""
    if not offered_tools(request):
        return ""
    named = named_choice(request.tool_choice)
    if named is not None:
        return (
            f"You must answer this turn by calling the tool {named}. Do not answer with text only."
        )
    if request.tool_choice == "required":
        return "You must answer this turn by calling one or more of your tools."
    return ""


def _not_followed(request: ChatRequest) -> ProxyError:
    named = named_choice(request.tool_choice)
    wanted = f"a call of the tool {named!r}" if named else "a tool call"
    return ProxyError(
        "tool_choice_not_followed",
        f"tool_choice asked for {wanted}, and the model answered without it. Retry the "
        "request, or send it with tool_choice 'auto'.",
        param="tool_choice",
    )


async def follow_tool_choice(
    events: AsyncGenerator[BackendEvent, None], request: ChatRequest
) -> AsyncGenerator[BackendEvent, None]:
    """The backend's events, with ``parallel_tool_calls=false`` keeping the first call
    only, and a required call enforced: its text is held back until the answer is known
    to hold the call, and an answer without it is ``tool_choice_not_followed``."""
    named = named_choice(request.tool_choice)
    required = bool(offered_tools(request)) and (
        named is not None or request.tool_choice == "required"
    )
    held: list[TextDelta] = []
    calls = 0
    # Closed here, not left to the garbage collector: closing the backend's events stops
    # its CLI, which must not outlive the answer.
    async with aclosing(events) as backend_events:
        async for event in backend_events:
            if isinstance(event, ToolCallEvent):
                if (request.parallel_tool_calls is False and calls) or (
                    named is not None and event.name != named
                ):
                    continue
                for text in held:
                    yield text
                held.clear()
                calls += 1
                yield event
            elif isinstance(event, TextDelta) and required and not calls:
                held.append(event)
            elif isinstance(event, Finish):
                if required and not calls:
                    raise _not_followed(request)
                yield event
                return
            else:
                yield event
