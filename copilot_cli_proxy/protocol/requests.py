"""Parse and validate an OpenAI Chat Completions request body. Pure: no I/O.

The result keeps the request's structure (core/request.py): images, tools, tool
calls and results, the response format. Whether a backend can honour them is its
own decision (gateway/capabilities.py); here only the shape is checked, and every
mistake is a 400 that names the offending field.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from copilot_cli_proxy.core.request import (
    ChatRequest,
    ImagePart,
    Message,
    ToolCall,
)
from copilot_cli_proxy.errors import ProxyError, clip
from copilot_cli_proxy.protocol.tool_fields import (
    parse_response_format,
    parse_tool_choice,
    parse_tools,
)

__all__ = ["ChatRequest", "Message", "decode_body", "parse_chat_request"]

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
MAX_STOP_SEQUENCES = 4

# Sampling knobs and the like: a backend that cannot honour them lists them as ignored.
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
    "prompt_cache_key",
    "safety_identifier",
    "verbosity",
)
# Understood fields that need no action when they hold their neutral value.
NEUTRAL_PARAMS = ("model", "messages", "stream", "stream_options", "stop", "reasoning_effort")
STRUCTURED_PARAMS = (
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "parallel_tool_calls",
    "response_format",
    "n",
    "logprobs",
    "modalities",
    "audio",
)
KNOWN_PARAMS = frozenset(IGNORED_PARAMS + NEUTRAL_PARAMS + STRUCTURED_PARAMS)
IMAGE_PARTS = ("image_url", "input_image")
# No model id comes near this; a longer one is refused before it is echoed or logged.
MAX_MODEL_CHARS = 200
# The x-ignored-params header names at most this many fields, each at most this long.
MAX_REPORTED_PARAMS = 32
MAX_REPORTED_NAME_CHARS = 64


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


def _content(content: Any, param: str, *, allow_null: bool) -> tuple[str, tuple[ImagePart, ...]]:
    """The text parts joined, and the image parts; anything else is a 400."""
    if content is None:
        if allow_null:
            return "", ()
        raise _invalid(f"'{param}' must not be null.", param)
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise _invalid(f"'{param}' must be a string or an array of content parts.", param)
    texts: list[str] = []
    images: list[ImagePart] = []
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
        elif kind in IMAGE_PARTS:
            images.append(_image(part, part_param))
        elif kind in ("input_audio", "file", "input_file"):
            raise ProxyError(
                "unsupported_content",
                f"'{part_param}' is a {kind} part; this server passes text and images only.",
                param=part_param,
            )
        else:
            raise _invalid(
                f"'{part_param}.type' {clip(str(kind))!r} is not a known content part.",
                part_param,
            )
    return "\n".join(texts), tuple(images)


def _image(part: dict[str, Any], param: str) -> ImagePart:
    image = part.get("image_url")
    url: Any
    detail: Any
    if isinstance(image, str):
        url, detail = image, part.get("detail")
    elif isinstance(image, dict):
        url, detail = image.get("url"), image.get("detail")
    else:
        raise _invalid(f"'{param}.image_url' must be an object with a 'url'.", f"{param}.image_url")
    if not isinstance(url, str) or not url:
        raise _invalid(f"'{param}.image_url.url' must be a non-empty string.", f"{param}.image_url")
    if detail is not None and not isinstance(detail, str):
        raise _invalid(f"'{param}.image_url.detail' must be a string.", f"{param}.image_url")
    return ImagePart(url=url, detail=detail)


def _tool_calls(raw: Any, param: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _invalid(f"'{param}' must be an array.", param)
    calls: list[ToolCall] = []
    for index, call in enumerate(raw):
        where = f"{param}[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise _invalid(f"'{where}' must have a 'function' object.", where)
        name, arguments = function.get("name"), function.get("arguments", "")
        call_id = call.get("id", "")
        if not isinstance(name, str) or not name:
            raise _invalid(f"'{where}.function.name' must be a non-empty string.", where)
        if not isinstance(arguments, str):
            raise _invalid(f"'{where}.function.arguments' must be a JSON string.", where)
        if not isinstance(call_id, str):
            raise _invalid(f"'{where}.id' must be a string.", where)
        calls.append(ToolCall(id=call_id, name=name, arguments=arguments))
    return tuple(calls)


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
            f"'{param}.role' {clip(role)!r} is not one of {', '.join(ROLES)}.", f"{param}.role"
        )
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise _invalid(f"'{param}.name' must be a string.", f"{param}.name")
    if "content" not in raw and role != "assistant":
        raise _invalid(f"'{param}.content' is required.", f"{param}.content")
    content, images = _content(
        raw.get("content"), f"{param}.content", allow_null=role == "assistant"
    )
    calls: tuple[ToolCall, ...] = ()
    if role == "assistant":
        calls = _tool_calls(raw.get("tool_calls"), f"{param}.tool_calls")
        legacy = raw.get("function_call")
        if isinstance(legacy, dict) and not calls:
            calls = _tool_calls([{"function": legacy}], f"{param}.function_call")
        if not content and not calls:
            raise _invalid(f"'{param}' has neither content nor tool_calls.", f"{param}.content")
    tool_call_id = raw.get("tool_call_id")
    if tool_call_id is not None and not isinstance(tool_call_id, str):
        raise _invalid(f"'{param}.tool_call_id' must be a string.", f"{param}.tool_call_id")
    for value, field in ((content, "content"), (name, "name"), (tool_call_id, "tool_call_id")):
        if value is not None:
            _require_utf8(value, f"{param}.{field}")
    for call in calls:
        _require_utf8(call.name + call.arguments + call.id, f"{param}.tool_calls")
    normal_role = {"developer": "system", "function": "tool"}.get(role, role)
    return Message(
        role=normal_role,
        content=content,
        name=name,
        tool_call_id=tool_call_id,
        images=images,
        tool_calls=calls,
    )


def _check_tool_results(messages: tuple[Message, ...]) -> None:
    """A tool result must answer a call the assistant made earlier in the history."""
    seen: set[str] = set()
    for index, message in enumerate(messages):
        seen.update(call.id for call in message.tool_calls if call.id)
        if message.role == "tool" and message.tool_call_id and message.tool_call_id not in seen:
            param = f"messages[{index}].tool_call_id"
            raise _invalid(
                f"'{param}' {clip(message.tool_call_id)!r} matches no tool call of an "
                "earlier assistant message.",
                param,
            )


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


def _positive_int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _invalid(f"'{key}' must be a positive integer.", key)
    return value


def _modalities(body: dict[str, Any]) -> tuple[str, ...]:
    raw = body.get("modalities")
    if raw is None:
        return ("audio",) if body.get("audio") is not None else ()
    if not isinstance(raw, list) or not all(isinstance(m, str) for m in raw):
        raise _invalid("'modalities' must be an array of strings.", "modalities")
    return tuple(raw)


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
    if not any(
        m.role != "system" and (m.content.strip() or m.images or m.tool_calls) for m in messages
    ):
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

    _check_tool_results(messages)
    tools = parse_tools(body)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise _invalid("'parallel_tool_calls' must be a boolean.", "parallel_tool_calls")
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise _invalid("'logprobs' must be a boolean.", "logprobs")
    ignored = tuple(key for key in IGNORED_PARAMS if body.get(key) is not None)
    unknown = tuple(k for k, v in body.items() if k not in KNOWN_PARAMS and v is not None)
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        stop=_parse_stop(body.get("stop")),
        reasoning_effort=effort,
        ignored_params=ignored,
        tools=tools,
        tool_choice=parse_tool_choice(body, tools),
        parallel_tool_calls=parallel,
        response_format=parse_response_format(body.get("response_format")),
        n=_positive_int(body, "n"),
        logprobs=bool(logprobs),
        modalities=_modalities(body),
        unknown_params=unknown,
        raw=body,
    )


def ignored_params_header(names: tuple[str, ...]) -> bytes:
    """The ``x-ignored-params`` value: field names made safe for a header, bounded.

    Unknown names are the client's own JSON keys: any text, of any length and number.
    Percent-encoding keeps CR/LF and non-ASCII out of the header.
    """
    shown = [
        quote(name[:MAX_REPORTED_NAME_CHARS], safe="-_.~") for name in names[:MAX_REPORTED_PARAMS]
    ]
    if len(names) > MAX_REPORTED_PARAMS:
        shown.append(f"+{len(names) - MAX_REPORTED_PARAMS} more")
    return ",".join(shown).encode("ascii")
