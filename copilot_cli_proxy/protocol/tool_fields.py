"""The function-calling and structured-output fields of a chat request: ``tools``
(and legacy ``functions``), ``tool_choice`` (and ``function_call``), ``response_format``.
Shape checks only; whether a backend honours them is its capabilities' business.
"""

from __future__ import annotations

import re
from typing import Any

from copilot_cli_proxy.core.request import ResponseFormat, ToolSpec
from copilot_cli_proxy.errors import ProxyError, clip

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _invalid(message: str, param: str) -> ProxyError:
    return ProxyError("invalid_request", message, param=param)


def parse_tools(body: dict[str, Any]) -> tuple[ToolSpec, ...]:
    raw, key = body.get("tools"), "tools"
    if raw is None and body.get("functions") is not None:
        functions = body["functions"]
        if not isinstance(functions, list):
            raise _invalid("'functions' must be an array.", "functions")
        raw, key = [{"type": "function", "function": f} for f in functions], "functions"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _invalid(f"'{key}' must be an array.", key)
    tools: list[ToolSpec] = []
    for index, tool in enumerate(raw):
        where = f"{key}[{index}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise _invalid(f'\'{where}\' must be a {{"type": "function"}} tool.', where)
        function = tool.get("function")
        if not isinstance(function, dict):
            raise _invalid(f"'{where}.function' must be an object.", f"{where}.function")
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise _invalid(
                f"'{where}.function.name' must match ^[a-zA-Z0-9_-]{{1,64}}$, "
                f"got {clip(repr(name))}.",
                f"{where}.function.name",
            )
        if any(t.name == name for t in tools):
            raise _invalid(
                f"'{where}.function.name' {name!r} is defined twice.", f"{where}.function.name"
            )
        description = function.get("description", "")
        if not isinstance(description, str):
            raise _invalid(
                f"'{where}.function.description' must be a string.",
                f"{where}.function.description",
            )
        parameters = function.get("parameters", {})
        if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
            raise _invalid(
                f"'{where}.function.parameters' must be a JSON Schema object "
                '({"type": "object", ...}).',
                f"{where}.function.parameters",
            )
        strict = function.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise _invalid(f"'{where}.function.strict' must be a boolean.", where)
        tools.append(ToolSpec(name, description, parameters, strict))
    return tuple(tools)


def parse_tool_choice(body: dict[str, Any], tools: tuple[ToolSpec, ...]) -> Any:
    key = "tool_choice" if "tool_choice" in body else "function_call"
    choice = body.get(key)
    if choice is None:
        return None
    if key == "function_call" and isinstance(choice, dict):
        choice = {"type": "function", "function": choice}
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise _invalid(f"'{key}' must be none, auto, required or a function.", key)
        if choice == "required" and not tools:
            raise _invalid(f"'{key}' is required but 'tools' is empty.", key)
        return choice
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise _invalid(f'\'{key}\' must name a function: {{"function": {{"name": ...}}}}.', key)
    if not any(t.name == name for t in tools):
        raise _invalid(f"'{key}' names {clip(name)!r}, which is not in 'tools'.", key)
    return {"type": "function", "function": {"name": name}}


def parse_response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind != "json_schema":
        raise _invalid(
            "'response_format.type' must be text, json_object or json_schema.",
            "response_format",
        )
    spec = raw.get("json_schema")
    if not isinstance(spec, dict):
        raise _invalid(
            "'response_format.json_schema' must be an object.", "response_format.json_schema"
        )
    schema, name, strict = spec.get("schema", {}), spec.get("name"), spec.get("strict")
    if not isinstance(schema, dict):
        raise _invalid(
            "'response_format.json_schema.schema' must be a JSON Schema object.",
            "response_format.json_schema.schema",
        )
    if name is not None and not isinstance(name, str):
        raise _invalid(
            "'response_format.json_schema.name' must be a string.",
            "response_format.json_schema.name",
        )
    return ResponseFormat("json_schema", schema, name, strict if isinstance(strict, bool) else None)
