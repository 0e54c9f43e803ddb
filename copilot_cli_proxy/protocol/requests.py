"""Parse and validate an OpenAI Chat Completions request body. Pure: no I/O.

Anything that would change the meaning of the answer and that a CLI cannot honour
(images, tools, n > 1, logprobs, JSON mode) is a clear 400. Sampling knobs the CLI
cannot honour, and fields this server does not know at all, are accepted and listed
in ``ignored_params`` so they can be reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from copilot_cli_proxy.errors import ProxyError, clip

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
MAX_STOP_SEQUENCES = 4

# Accepted, but the CLIs have no way to honour them: reported back, never silently dropped.
IGNORED_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "logit_bias",
    "top_logprobs",
    "user",
    "metadata",
    "store",
    "service_tier",
    "parallel_tool_calls",
    "prompt_cache_key",
    "safety_identifier",
    "verbosity",
)
# Understood fields that need no action when they hold their neutral value.
NEUTRAL_PARAMS = ("model", "messages", "stream", "stream_options", "stop", "reasoning_effort")
# Understood fields that are refused unless neutral (``_reject_meaning_changers``).
CHECKED_PARAMS = (
    "tools",
    "functions",
    "tool_choice",
    "function_call",
    "n",
    "logprobs",
    "response_format",
    "modalities",
    "audio",
)
KNOWN_PARAMS = frozenset(IGNORED_PARAMS + NEUTRAL_PARAMS + CHECKED_PARAMS)
# No model id comes near this; a longer one is refused before it is echoed or logged.
MAX_MODEL_CHARS = 200
# The x-ignored-params header names at most this many fields, each at most this long.
MAX_REPORTED_PARAMS = 32
MAX_REPORTED_NAME_CHARS = 64


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # system | user | assistant | tool  (developer → system, function → tool)
    content: str
    name: str | None = None
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = ()
    reasoning_effort: str | None = None
    ignored_params: tuple[str, ...] = ()


def _echo(value: Any) -> str:
    """A client's value quoted in an error message, cut to a readable length."""
    return clip(repr(value))


def _invalid(message: str, param: str | None = None) -> ProxyError:
    return ProxyError("invalid_request", message, param=param)


def _unsupported(message: str, param: str) -> ProxyError:
    return ProxyError("unsupported_parameter", message, param=param)


def decode_body(raw: bytes) -> dict[str, Any]:
    """Bytes → JSON object, or a 400 that says what is wrong with it."""
    if not raw.strip():
        raise ProxyError("invalid_json", "The request body is empty; send a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProxyError(
            "invalid_json", f"The request body is not valid UTF-8 (byte {exc.start})."
        ) from None
    try:
        body = json.loads(text)
    except RecursionError:
        raise ProxyError("invalid_json", "The request body is nested too deeply.") from None
    except json.JSONDecodeError as exc:
        raise ProxyError(
            "invalid_json",
            f"The request body is not valid JSON: {exc.msg} "
            f"(line {exc.lineno} column {exc.colno}).",
        ) from None
    if not isinstance(body, dict):
        raise ProxyError("invalid_json", "The request body must be a JSON object.")
    return body


def _text_of_content(content: Any, param: str, *, allow_null: bool) -> str:
    if content is None:
        if allow_null:
            return ""
        raise _invalid(f"'{param}' must not be null.", param)
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid(f"'{param}' must be a string or an array of content parts.", param)
    texts: list[str] = []
    for index, part in enumerate(content):
        part_param = f"{param}[{index}]"
        if not isinstance(part, dict):
            raise _invalid(f"'{part_param}' must be an object.", part_param)
        kind = part.get("type")
        if kind in ("text", "input_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise _invalid(f"'{part_param}.text' must be a string.", f"{part_param}.text")
            texts.append(text)
        elif kind == "refusal":
            refusal = part.get("refusal")
            if isinstance(refusal, str):
                texts.append(refusal)
        elif kind in ("image_url", "input_image", "input_audio", "file", "input_file"):
            raise ProxyError(
                "unsupported_content",
                f"'{part_param}' is a {kind} part; this server passes text only "
                "(the CLI cannot receive images, audio or files through the API).",
                param=part_param,
            )
        else:
            raise _invalid(
                f"'{part_param}.type' {_echo(kind)} is not a known content part.", part_param
            )
    return "\n".join(texts)


def _tool_calls_text(tool_calls: Any, param: str) -> str:
    if tool_calls is None:
        return ""
    if not isinstance(tool_calls, list):
        raise _invalid(f"'{param}' must be an array.", param)
    lines: list[str] = []
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise _invalid(f"'{param}' entries must have a 'function' object.", param)
        name = function.get("name", "?")
        arguments = function.get("arguments", "")
        call_id = call.get("id", "")
        lines.append(f"[called tool {name} (id {call_id}) with arguments: {arguments}]")
    return "\n".join(lines)


def _require_utf8(text: str, param: str) -> None:
    # JSON may carry an unpaired surrogate escape (\ud800); such text cannot be encoded
    # for the CLI (argv or stdin), so it is the client's 400, not a 500 later on.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(
            f"'{param}' contains an unpaired UTF-16 surrogate, which is not valid text.", param
        ) from None


def _parse_message(raw: Any, index: int) -> Message:
    param = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise _invalid(f"'{param}' must be an object.", param)
    role = raw.get("role")
    if not isinstance(role, str):
        raise _invalid(f"'{param}.role' is required and must be a string.", f"{param}.role")
    if role not in ROLES:
        raise _invalid(
            f"'{param}.role' {_echo(role)} is not one of {', '.join(ROLES)}.", f"{param}.role"
        )
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise _invalid(f"'{param}.name' must be a string.", f"{param}.name")
    if "content" not in raw and role != "assistant":
        raise _invalid(f"'{param}.content' is required.", f"{param}.content")
    content = _text_of_content(
        raw.get("content"), f"{param}.content", allow_null=role == "assistant"
    )
    if role == "assistant":
        calls = _tool_calls_text(raw.get("tool_calls"), f"{param}.tool_calls")
        content = "\n".join(part for part in (content, calls) if part)
        if not content:
            raise _invalid(f"'{param}' has neither content nor tool_calls.", f"{param}.content")
    tool_call_id = raw.get("tool_call_id")
    if tool_call_id is not None and not isinstance(tool_call_id, str):
        raise _invalid(f"'{param}.tool_call_id' must be a string.", f"{param}.tool_call_id")
    for value, field in ((content, "content"), (name, "name"), (tool_call_id, "tool_call_id")):
        if value is not None:
            _require_utf8(value, f"{param}.{field}")
    normal_role = {"developer": "system", "function": "tool"}.get(role, role)
    return Message(role=normal_role, content=content, name=name, tool_call_id=tool_call_id)


def _parse_stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _invalid("'stop' must be a string or an array of strings.", "stop")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise _invalid(f"'stop' takes at most {MAX_STOP_SEQUENCES} sequences.", "stop")
    if any(s == "" for s in stops):
        raise _invalid("'stop' sequences must not be empty.", "stop")
    return tuple(stops)


def _reject_meaning_changers(body: dict[str, Any]) -> None:
    if body.get("tools") or body.get("functions"):
        key = "tools" if body.get("tools") else "functions"
        raise _unsupported(
            f"'{key}' (function calling) is not supported: the CLI runs its own tools, "
            "and they are off on this server.",
            key,
        )
    for key in ("tool_choice", "function_call"):
        value = body.get(key)
        if value not in (None, "none", "auto"):
            raise _unsupported(f"'{key}' is not supported: function calling is off.", key)
    n = body.get("n")
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise _invalid("'n' must be a positive integer.", "n")
        if n != 1:
            raise _unsupported("'n' must be 1: the CLI gives one answer per request.", "n")
    if body.get("logprobs"):
        raise _unsupported(
            "'logprobs' is not supported: the CLI reports no log probabilities.", "logprobs"
        )
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind != "text":
            raise _unsupported(
                '\'response_format\' other than {"type": "text"} is not supported: '
                "the CLI cannot enforce JSON output.",
                "response_format",
            )
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise _unsupported("'modalities' other than [\"text\"] is not supported.", "modalities")
    if body.get("audio") is not None:
        raise _unsupported("'audio' output is not supported.", "audio")


def parse_chat_request(body: dict[str, Any], *, default_model: str) -> ChatRequest:
    """Validate a decoded body; raise ``ProxyError`` with the offending ``param``."""
    model = body.get("model", default_model)
    if model is None or model == "":
        model = default_model
    if not isinstance(model, str):
        raise _invalid("'model' must be a string.", "model")
    if len(model) > MAX_MODEL_CHARS:
        raise _invalid(
            f"'model' is {len(model)} characters long; no model id is longer than "
            f"{MAX_MODEL_CHARS}. GET /v1/models lists the ids.",
            "model",
        )

    messages_raw = body.get("messages")
    if messages_raw is None:
        raise _invalid("'messages' is required.", "messages")
    if not isinstance(messages_raw, list):
        raise _invalid("'messages' must be an array.", "messages")
    if not messages_raw:
        raise _invalid("'messages' must contain at least one message.", "messages")
    messages = tuple(_parse_message(raw, i) for i, raw in enumerate(messages_raw))
    if not any(m.role != "system" and m.content.strip() for m in messages):
        raise _invalid("'messages' must contain a non-empty user message.", "messages")

    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid("'stream' must be a boolean.", "stream")

    include_usage = False
    stream_options = body.get("stream_options")
    if stream_options is not None:
        if not isinstance(stream_options, dict):
            raise _invalid("'stream_options' must be an object.", "stream_options")
        flag = stream_options.get("include_usage", False)
        if not isinstance(flag, bool):
            raise _invalid(
                "'stream_options.include_usage' must be a boolean.", "stream_options.include_usage"
            )
        include_usage = flag

    effort = body.get("reasoning_effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        raise _invalid(
            f"'reasoning_effort' must be one of {', '.join(REASONING_EFFORTS)}.", "reasoning_effort"
        )

    _reject_meaning_changers(body)
    ignored = tuple(key for key in IGNORED_PARAMS if body.get(key) is not None)
    unknown = tuple(k for k, v in body.items() if k not in KNOWN_PARAMS and v is not None)
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        stop=_parse_stop(body.get("stop")),
        reasoning_effort=effort,
        ignored_params=ignored + unknown,
    )


def ignored_params_header(request: ChatRequest) -> bytes:
    """The ``x-ignored-params`` value: field names made safe for a header, bounded.

    Unknown names are the client's own JSON keys: any text, of any length and number.
    Percent-encoding keeps CR/LF and non-ASCII out of the header.
    """
    names = request.ignored_params
    shown = [
        quote(name[:MAX_REPORTED_NAME_CHARS], safe="-_.~") for name in names[:MAX_REPORTED_PARAMS]
    ]
    if len(names) > MAX_REPORTED_PARAMS:
        shown.append(f"+{len(names) - MAX_REPORTED_PARAMS} more")
    return ",".join(shown).encode("ascii")
