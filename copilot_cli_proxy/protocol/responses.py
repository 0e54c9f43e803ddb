"""Build OpenAI Chat Completions responses and SSE frames. Pure: no I/O."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from copilot_cli_proxy.core.types import ToolCallEvent, Usage
from copilot_cli_proxy.errors import ProxyError


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def usage_body(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_prompt_tokens is not None:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cached_prompt_tokens}
    if usage.reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


@dataclass(slots=True)
class CompletionIdentity:
    """What every chunk of one answer shares."""

    model: str
    id: str = field(default_factory=new_completion_id)
    created: int = field(default_factory=lambda: int(time.time()))

    def _base(self, obj: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        body = self._base("chat.completion.chunk")
        body["choices"] = [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ]
        return body

    def usage_chunk(self, usage: Usage | None) -> dict[str, Any]:
        body = self._base("chat.completion.chunk")
        body["choices"] = []
        body["usage"] = usage_body(usage or Usage())
        return body

    def completion(
        self,
        text: str,
        finish_reason: str,
        usage: Usage | None,
        tool_calls: tuple[ToolCallEvent, ...] = (),
    ) -> dict[str, Any]:
        body = self._base("chat.completion")
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if tool_calls:
            # OpenAI's shape: no text next to the calls is null, not "".
            message["content"] = text or None
            message["tool_calls"] = [tool_call_body(call) for call in tool_calls]
        body["choices"] = [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ]
        body["usage"] = usage_body(usage or Usage())
        return body


def tool_call_body(call: ToolCallEvent, index: int | None = None) -> dict[str, Any]:
    """One call as OpenAI writes it; ``index`` set: as a stream delta's element."""
    body: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    return body if index is None else {"index": index, **body}


def sse_event(data: dict[str, Any]) -> bytes:
    # ensure_ascii=False: multibyte text goes out as UTF-8, byte-exact, not \u escapes.
    # backslashreplace: an unpaired surrogate (only possible inside a JSON string) becomes
    # its JSON escape instead of an UnicodeEncodeError in the middle of a stream.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return b"data: " + text.encode("utf-8", "backslashreplace") + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


def sse_error(error: ProxyError) -> bytes:
    return sse_event(error.body())


class StopSequenceFilter:
    """Cut the answer at the first stop sequence, however the deltas split it.

    Holds back only as many characters as could still be the start of a stop
    sequence, so everything else streams on at once.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = stops
        self._hold = max((len(s) for s in stops), default=1) - 1
        self._buffer = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Return the text that is safe to send now; after a stop, always ''."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        self._buffer += text
        # The stop that completes first is where generation would have stopped, whatever
        # the deltas' boundaries; of those ending at the same character, the longest.
        found = [(i + len(s), i) for s in self._stops if (i := self._buffer.find(s)) >= 0]
        if found:
            cut = min(found)[1]
            out, self._buffer = self._buffer[:cut], ""
            self.stopped = True
            return out
        safe = len(self._buffer) - self._hold
        if safe <= 0:
            return ""
        out, self._buffer = self._buffer[:safe], self._buffer[safe:]
        return out

    def flush(self) -> str:
        out, self._buffer = ("" if self.stopped else self._buffer), ""
        return out
