"""Reading claude's ``--output-format=stream-json --verbose --include-partial-messages``:
``system/init``, ``stream_event``…, ``assistant``, ``result``.

The answer's text arrives twice: as ``text_delta`` stream events and again, whole, in the
``assistant`` message. Which copy to use is decided by the text itself, not by message ids:
an id that differs between the two copies, an ``assistant`` line before its deltas, or a
repeated line must neither double the answer nor lose a part of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot_cli_proxy.backends.base import BackendEvent, Finish, TextDelta, Usage
from copilot_cli_proxy.backends.cli_backend import OutputParser
from copilot_cli_proxy.backends.structured import invalid_output
from copilot_cli_proxy.errors import ProxyError

LOGIN_HINT = (
    "The claude CLI on the server is not logged in. The operator must log it in once: run "
    "`copilot-cli-proxy login claude` (or `claude auth login`) as the user that runs the "
    "server, or create a long-lived token with `claude setup-token` and set "
    "CLAUDE_CODE_OAUTH_TOKEN (or ANTHROPIC_API_KEY) in the server's environment."
)

# assistant.error values (stream-json) → our error code
_ASSISTANT_ERRORS: dict[str, str] = {
    "authentication_failed": "cli_not_logged_in",
    "oauth_org_not_allowed": "cli_not_logged_in",
    "cloud_credential_error": "cli_not_logged_in",
    "rate_limit": "rate_limit_exceeded",
    "model_not_found": "model_not_found",
    "overloaded": "cli_unavailable",
    "server_error": "cli_unavailable",
    "billing_error": "cli_unavailable",
    "account_on_hold": "cli_unavailable",
    "verification_required": "cli_unavailable",
    "invalid_request": "cli_failed",
}
_STOP_REASONS = {"max_tokens": "length", "refusal": "content_filter"}
STRUCTURED_RETRIES_EXHAUSTED = "error_max_structured_output_retries"


def usage_from_result(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None

    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    if not isinstance(usage.get("input_tokens"), int) or not isinstance(
        usage.get("output_tokens"), int
    ):
        return None
    cache_read = count("cache_read_input_tokens")
    return Usage(
        prompt_tokens=count("input_tokens") + count("cache_creation_input_tokens") + cache_read,
        completion_tokens=count("output_tokens"),
        cached_prompt_tokens=cache_read,
    )


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    blocks = [b for b in (content if isinstance(content, list) else []) if isinstance(b, dict)]
    return "".join(
        b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str)
    )


@dataclass(slots=True)
class _Message:
    """One model message as seen so far: the ids it was seen under, what the client got of
    it, and how much of that an ``assistant`` line has confirmed (a line may carry one
    block of the message or all of it)."""

    ids: set[str] = field(default_factory=set)
    streamed: str = ""
    delivered: str = ""
    confirmed: int = 0

    def covers(self, text: str, *, repeat: bool) -> bool:
        """True (and confirms it) when ``text`` was already delivered for this message;
        ``repeat``: a line of this very message may repeat what was confirmed."""
        if text and self.delivered[self.confirmed :].startswith(text):  # the next block
            self.confirmed += len(text)
            return True
        if self.delivered.startswith(text) and (repeat or len(text) > self.confirmed):
            self.confirmed = max(self.confirmed, len(text))  # the whole message so far
            return True
        return False

    def deliver_rest(self, text: str) -> str:
        """What of ``text`` (a whole message, or its next block) the client has not got."""
        if text.startswith(self.delivered):
            rest = text[len(self.delivered) :]
        elif text.startswith(self.delivered[self.confirmed :]):
            rest = text[len(self.delivered) - self.confirmed :]
        else:
            rest = text
        self.delivered += rest
        self.confirmed = len(self.delivered)
        return rest

    def stream(self, piece: str) -> str:
        self.streamed += piece
        if self.delivered.startswith(self.streamed):
            return ""  # an assistant line already brought this part
        if self.streamed.startswith(self.delivered):
            rest = self.streamed[len(self.delivered) :]
        else:
            rest = piece  # the two copies disagree: never lose text
        self.delivered += rest
        return rest


class ClaudeOutputParser(OutputParser):
    """stream-json: system/init, stream_event…, assistant, result."""

    def __init__(self, *, structured: bool = False) -> None:
        # With --json-schema the answer is the StructuredOutput tool's input, reported
        # in the result line; text the model writes around it is not the answer.
        self.structured = structured
        self._messages: list[_Message] = []
        self._current: _Message | None = None
        # A new model message starts only after a message_start or a tool result (a user
        # line): until then, another assistant line belongs to the current message.
        self._after_assistant = False
        self._assistant_error: str | None = None
        self._stop_reason: str | None = None
        self._noise: list[str] = []
        self.done = False

    def feed_text(self, line: str) -> None:
        self._noise.append(line)

    def feed(self, obj: dict[str, Any]) -> list[BackendEvent]:
        kind = obj.get("type")
        if obj.get("parent_tool_use_id"):
            return []  # a sub-agent's output is not the answer
        if kind == "stream_event":
            return self._text(self._stream_event(obj.get("event")))
        if kind == "assistant":
            return self._text(self._assistant(obj))
        if kind == "result":
            return self._result(obj)
        if kind == "user":
            self._after_assistant = False
        return []

    def _text(self, events: list[BackendEvent]) -> list[BackendEvent]:
        return [] if self.structured else events

    def _by_id(self, message_id: str | None) -> _Message | None:
        if message_id is None:
            return None
        return next((m for m in self._messages if message_id in m.ids), None)

    def _start(self, message_id: str | None) -> _Message:
        message = self._by_id(message_id)
        if message is None:
            message = _Message({message_id} if message_id is not None else set())
            self._messages.append(message)
        self._current = message
        return message

    def _stream_event(self, event: Any) -> list[BackendEvent]:
        if not isinstance(event, dict):
            return []
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            raw_id = message.get("id") if isinstance(message, dict) else None
            self._start(str(raw_id) if raw_id is not None else None)
            self._after_assistant = False
        elif kind == "content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    current = self._current or self._start(None)
                    rest = current.stream(text)
                    return [TextDelta(rest)] if rest else []
        elif kind == "message_delta":
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self._stop_reason = str(delta["stop_reason"])
        return []

    def _assistant(self, obj: dict[str, Any]) -> list[BackendEvent]:
        if obj.get("error"):
            self._assistant_error = str(obj["error"])
            return []
        message = obj.get("message")
        if not isinstance(message, dict):
            return []
        if message.get("stop_reason"):
            self._stop_reason = str(message["stop_reason"])
        raw_id = message.get("id")
        message_id = str(raw_id) if raw_id is not None else None
        same = self._by_id(message_id) or (self._current if self._after_assistant else None)
        self._after_assistant = True
        text = message_text(message)
        if not text:
            return []
        # Already delivered, by deltas or by an earlier copy of this line?
        for candidate in sorted(self._messages, key=lambda m: m is not same):
            if candidate.covers(text, repeat=candidate is same):
                if message_id is not None:
                    candidate.ids.add(message_id)  # a repeat under this id is known now
                return []
        target = same or self._current
        if target is None or (target.delivered and target.confirmed >= len(target.delivered)):
            target = self._start(message_id)
        elif message_id is not None:
            target.ids.add(message_id)
        rest = target.deliver_rest(text)
        return [TextDelta(rest)] if rest else []

    def _result(self, obj: dict[str, Any]) -> list[BackendEvent]:
        self.done = True
        raw_text = obj.get("result")
        text = raw_text if isinstance(raw_text, str) else ""
        if obj.get("subtype") == STRUCTURED_RETRIES_EXHAUSTED:
            errors = obj.get("errors")
            detail = "; ".join(str(e) for e in errors) if isinstance(errors, list) else ""
            raise invalid_output(
                "the claude CLI gave up after the model's answers did not validate"
                + (f" ({detail})" if detail else "")
            )
        if obj.get("is_error") or obj.get("subtype") != "success":
            raise self._error(text, obj)
        reason = _STOP_REASONS.get(obj.get("stop_reason") or self._stop_reason or "", "stop")
        usage = usage_from_result(obj.get("usage")) or Usage()
        done: list[BackendEvent] = [usage, Finish(reason)]  # type: ignore[arg-type]
        if not self.structured:
            return done
        # The validated object when the model used the tool; else the text it gave,
        # which the caller checks against the format (and refuses if it fails).
        if "structured_output" in obj:
            text = json.dumps(obj["structured_output"], ensure_ascii=False)
        return [TextDelta(text), *done]

    def _error(self, text: str, obj: dict[str, Any]) -> ProxyError:
        errors = obj.get("errors")
        detail = text or (
            "; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else ""
        )
        detail = detail or str(obj.get("subtype") or "unknown error")
        if text.startswith("Not logged in") or text.startswith("Invalid API key"):
            return ProxyError("cli_not_logged_in", LOGIN_HINT)
        code = _ASSISTANT_ERRORS.get(self._assistant_error or "", "cli_failed")
        if code == "cli_not_logged_in":
            return ProxyError(code, LOGIN_HINT)
        if code == "model_not_found":
            return ProxyError(code, f"The claude CLI could not use the model: {detail}", "model")
        return ProxyError(code, f"The claude CLI reported an error: {detail}")

    def finish(self, exit_code: int, stderr: str, workdir: Path) -> list[BackendEvent]:
        if self.done:
            return []
        noise = " ".join(self._noise)
        if noise.startswith("Not logged in"):
            raise ProxyError("cli_not_logged_in", LOGIN_HINT)
        detail = " ".join(line.strip() for line in stderr.strip().splitlines()[:3])
        raise ProxyError(
            "cli_failed",
            f"The claude CLI ended without an answer (exit code {exit_code})"
            + (f": {detail}" if detail else "."),
        )
