"""Values every layer shares: the events a backend emits and what a model is.

They live below both their producers (backends) and their consumers (protocol
encoders, routes, observability), so no package has to import "upward".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer, in the order the CLI produced it."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the CLI reported them; ``None`` where the CLI gives no count."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_prompt_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    """The model calls one of the client's tools; the answer then ends with its calls.

    Nothing is run on the server: the client runs the tool and sends the result back
    in its next request (a ``tool`` message with this ``id``).
    """

    id: str
    name: str
    arguments: str  # JSON text


FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]


@dataclass(frozen=True, slots=True)
class Finish:
    """The answer is complete. Only sent on success: a failure raises instead."""

    reason: FinishReason = "stop"


BackendEvent = TextDelta | ToolCallEvent | Usage | Finish


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    owned_by: str
    display_name: str | None = None
    # Other names the CLI accepts for this model (claude: the resolved full name).
    aliases: tuple[str, ...] = ()


# -- passthrough: an OpenAI-compatible upstream's own answer, relayed as it came --------------


@dataclass(frozen=True, slots=True)
class UpstreamChunk:
    """One SSE ``data:`` object of an upstream's streamed chat completion, as parsed.

    Relayed one by one as they arrive; the encoder rewrites only ``model``.
    """

    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UpstreamBody:
    """An upstream's whole non-streamed chat completion body, as parsed."""

    data: dict[str, Any]
