"""The request every backend receives, whatever API surface it came through.

It keeps the structure of the client's request (content parts with images, tool
definitions, the assistant's tool calls, tool results, the response format), so a
backend that can honour them gets them intact. The CLI backends flatten it to text
(backends/prompt.py); what a backend cannot honour it refuses by its capabilities
(gateway/capabilities.py), naming itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ImagePart:
    url: str  # an https URL or a data: URL
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the assistant made, as the client sends it back in the history."""

    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the client offers the model."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    type: str  # json_object | json_schema  ("text" is no format at all)
    schema: Mapping[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # system | user | assistant | tool  (developer → system, function → tool)
    content: str  # the text parts, joined
    name: str | None = None
    tool_call_id: str | None = None
    images: tuple[ImagePart, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = ()
    reasoning_effort: str | None = None
    # Sampling and other knobs that a backend either honours or lists as ignored.
    ignored_params: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | Mapping[str, Any] | None = None  # none | auto | required | {function}
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    n: int = 1
    logprobs: bool = False
    modalities: tuple[str, ...] = ()
    # Fields the API does not define: reported as ignored by backends that drop them.
    unknown_params: tuple[str, ...] = ()
    # The client's body as parsed, for backends that pass a request on as it came.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
