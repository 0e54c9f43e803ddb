"""Structured output (``response_format``) over a CLI that answers in text.

The answer is held back until it is complete, checked (json_object: a JSON object;
json_schema: valid against the schema, with ``jsonschema``), and only then given to the
client as content, whole. A backend that cannot make the CLI enforce the format (copilot)
gets one repair turn: the model is told what was wrong and answers again. An answer that
still fails is a 502 ``invalid_structured_output`` naming the error; it is never returned
as if it were valid.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from copilot_cli_proxy.core.request import ResponseFormat
from copilot_cli_proxy.core.types import BackendEvent, Finish, TextDelta, ToolCallEvent, Usage
from copilot_cli_proxy.errors import ProxyError, clip

OBJECT_SCHEMA: Mapping[str, Any] = {"type": "object"}
# A ```json … ``` (or bare ```) fence around the whole answer, as models like to add.
FENCE = re.compile(r"\A\s*```[A-Za-z0-9_-]*[ \t]*\r?\n(?P<body>.*?)\r?\n?```\s*\Z", re.DOTALL)
MAX_ERROR_CHARS = 500


def schema_of(fmt: ResponseFormat) -> Mapping[str, Any]:
    """The schema an answer must satisfy: json_object is any JSON object."""
    if fmt.type == "json_schema" and fmt.schema:
        return fmt.schema
    return OBJECT_SCHEMA


def check_schema(fmt: ResponseFormat) -> None:
    """A schema ``jsonschema`` cannot use is the client's mistake: a 400, before any run."""
    schema = schema_of(fmt)
    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        raise ProxyError(
            "invalid_request",
            f"'response_format.json_schema.schema' is not a valid JSON Schema: {clip(exc.message)}",
            param="response_format.json_schema.schema",
        ) from None


def format_instruction(fmt: ResponseFormat) -> str:
    """System text that asks for the format, for a CLI that cannot enforce it."""
    if fmt.type == "json_schema":
        name = f' (named "{fmt.name}")' if fmt.name else ""
        schema = json.dumps(schema_of(fmt), ensure_ascii=False, sort_keys=True)
        return (
            f"Answer with only a JSON value that validates against this JSON Schema{name}, "
            "with no other text before or after it and no code fence:\n" + schema
        )
    return (
        "Answer with only a JSON object, with no other text before or after it and no code fence."
    )


def with_instruction(system: str, fmt: ResponseFormat | None) -> str:
    if fmt is None:
        return system
    return "\n\n".join(part for part in (system, format_instruction(fmt)) if part.strip())


def strip_fence(text: str) -> str:
    """The answer without a Markdown code fence wrapped around all of it."""
    found = FENCE.match(text)
    return found.group("body") if found else text.strip()


def check_answer(text: str, fmt: ResponseFormat) -> tuple[str, str | None]:
    """(the JSON text to return, None) for a valid answer; ("", why) for an invalid one."""
    body = strip_fence(text)
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, RecursionError) as exc:
        shown = clip(body, 120) if body else "an empty answer"
        return "", f"the answer is not JSON ({exc.__class__.__name__}: {exc}): {shown}"
    if fmt.type == "json_object" and not isinstance(value, dict):
        return "", f"the answer is JSON but not an object: {clip(body, 120)}"
    schema = schema_of(fmt)
    validator = validator_for(schema, default=Draft202012Validator)(schema)
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: e.path)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return "", f"the answer does not validate against the schema at {where}: {error.message}"
    return body, None


def repair_note(error: str) -> str:
    return (
        f"Your answer was not accepted: {clip(error, MAX_ERROR_CHARS)}. Answer again with "
        "only the corrected JSON, with no other text and no code fence."
    )


def invalid_output(error: str) -> ProxyError:
    return ProxyError(
        "invalid_structured_output",
        f"The model's answer did not satisfy 'response_format': {clip(error, MAX_ERROR_CHARS)}",
        param="response_format",
    )


def add_usage(a: Usage | None, b: Usage) -> Usage:
    if a is None:
        return b

    def plus(x: int | None, y: int | None) -> int | None:
        return None if x is None and y is None else (x or 0) + (y or 0)

    return Usage(
        plus(a.prompt_tokens, b.prompt_tokens),
        plus(a.completion_tokens, b.completion_tokens),
        plus(a.cached_prompt_tokens, b.cached_prompt_tokens),
        plus(a.reasoning_tokens, b.reasoning_tokens),
    )


@dataclass(slots=True)
class Collected:
    text: str = ""
    usage: Usage | None = None
    finish: Finish | None = None
    calls: list[ToolCallEvent] = field(default_factory=list)


async def collect(events: AsyncGenerator[BackendEvent, None], into: Collected) -> None:
    into.text = ""
    async with aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, TextDelta):
                into.text += event.text
            elif isinstance(event, Usage):
                into.usage = add_usage(into.usage, event)
            elif isinstance(event, ToolCallEvent):
                into.calls.append(event)
            elif isinstance(event, Finish):
                into.finish = event
                if event.reason == "tool_calls":
                    # Stop reading (which stops the CLI): it would wait on a tool result
                    # that never comes, until the request timed out.
                    return


# One turn of the model; ``None`` the first time, then the repair note and the answer
# that failed (a backend that keeps the conversation needs only the note).
Attempt = Callable[[str | None, str], AsyncGenerator[BackendEvent, None]]


async def structured_answer(
    fmt: ResponseFormat, attempt: Attempt, *, repair: bool
) -> AsyncGenerator[BackendEvent, None]:
    """The checked answer as one TextDelta, then usage (of all turns) and Finish."""
    got = Collected()
    await collect(attempt(None, ""), got)
    if got.calls:
        # The model called the client's tools instead of answering: the format applies
        # to the answer that follows their results, so the calls go out as they are.
        for call in got.calls:
            yield call
        if got.usage is not None:
            yield got.usage
        yield Finish("tool_calls")
        return
    answer, error = check_answer(got.text, fmt)
    if error is not None and repair:
        await collect(attempt(repair_note(error), got.text), got)
        answer, error = check_answer(got.text, fmt)
    if error is not None:
        raise invalid_output(error)
    yield TextDelta(answer)
    if got.usage is not None:
        yield got.usage
    yield got.finish or Finish("stop")
