"""Typed option checks for the backends file: each kind declares its options this way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """What one key accepts. ``item`` is the element type of a list or a table's values."""

    kind: type
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    item: type | None = None


_NAMES = {
    str: "a string",
    int: "a whole number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
    float: "a number",
}


def check_option(value: Any, spec: OptionSpec) -> Any:
    """The value if it fits ``spec``; ``ValueError`` saying what was expected otherwise."""
    # bool is an int in Python, and TOML keeps them apart: so do we.
    wrong_bool = isinstance(value, bool) and spec.kind is not bool
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if wrong_bool or not isinstance(value, spec.kind):
        raise ValueError(f"must be {_NAMES.get(spec.kind, spec.kind.__name__)}, got {value!r}")
    if spec.choices and value not in spec.choices:
        raise ValueError(f"must be one of {', '.join(spec.choices)}, got {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if spec.minimum is not None and value < spec.minimum:
            raise ValueError(f"must be >= {spec.minimum}, got {value}")
        if spec.maximum is not None and value > spec.maximum:
            raise ValueError(f"must be <= {spec.maximum}, got {value}")
    if spec.item is not None and isinstance(value, list | dict):
        items: list[Any] = list(value.values() if isinstance(value, dict) else value)
        for item in items:
            if isinstance(item, bool) != (spec.item is bool) or not isinstance(item, spec.item):
                raise ValueError(
                    f"must hold only {_NAMES.get(spec.item, spec.item.__name__)} values, "
                    f"got {item!r}"
                )
        return tuple(value) if isinstance(value, list) else dict(value)
    return value
