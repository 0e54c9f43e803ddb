"""The relayed answer's usage, read for the request log and metrics."""

from __future__ import annotations

from typing import Any

import pytest

from copilot_cli_proxy.core.types import Usage
from copilot_cli_proxy.routes.relay import usage_of


@pytest.mark.parametrize(
    ("data", "usage"),
    [
        ({"choices": []}, None),
        ({"usage": None}, None),
        (
            {"usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}},
            Usage(prompt_tokens=9, completion_tokens=4),
        ),
        (
            {
                "usage": {
                    "prompt_tokens": 9,
                    "completion_tokens": 4,
                    "prompt_tokens_details": {"cached_tokens": 8},
                    "completion_tokens_details": {"reasoning_tokens": 2},
                }
            },
            Usage(9, 4, cached_prompt_tokens=8, reasoning_tokens=2),
        ),
        ({"usage": {"prompt_tokens": "9", "completion_tokens": True}}, Usage()),
    ],
)
def test_usage_of(data: dict[str, Any], usage: Usage | None) -> None:
    assert usage_of(data) == usage
