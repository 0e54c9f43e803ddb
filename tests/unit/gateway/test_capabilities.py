"""Each backend refuses what it cannot honour, naming itself and the field."""

from __future__ import annotations

from typing import Any

import pytest

from copilot_cli_proxy.backends.claude_cli import ClaudeCliBackend
from copilot_cli_proxy.backends.claude_warm import ClaudeWarmBackend
from copilot_cli_proxy.backends.copilot_cli import CopilotCliBackend
from copilot_cli_proxy.backends.copilot_headless import CopilotHeadlessBackend
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.gateway.capabilities import check_capabilities, ignored_params
from copilot_cli_proxy.protocol.requests import parse_chat_request

USER = {"role": "user", "content": "hi"}
TOOLS = [{"type": "function", "function": {"name": "f"}}]
IMAGE = {
    "role": "user",
    "content": [{"type": "text", "text": "?"}, {"type": "image_url", "image_url": {"url": "x"}}],
}


def request(**body: Any) -> Any:
    body.setdefault("messages", [USER])
    return parse_chat_request(body, default_model="m")


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"tools": TOOLS}, "unsupported_parameter", "tools"),
        ({"tools": TOOLS, "tool_choice": "required"}, "unsupported_parameter", "tools"),
        ({"messages": [IMAGE]}, "unsupported_content", "messages[0].content"),
        ({"response_format": {"type": "json_object"}}, "unsupported_parameter", "response_format"),
        ({"n": 2}, "unsupported_parameter", "n"),
        ({"logprobs": True}, "unsupported_parameter", "logprobs"),
        ({"modalities": ["text", "audio"]}, "unsupported_parameter", "modalities"),
        ({"audio": {"voice": "alloy"}}, "unsupported_parameter", "modalities"),
    ],
)
def test_a_backend_without_the_feature_refuses_it_by_name(
    body: dict[str, Any], code: str, param: str
) -> None:
    with pytest.raises(ProxyError) as caught:
        check_capabilities(request(**body), frozenset(), "copilot", "copilot-cli")
    error = caught.value
    assert (error.code, error.param, error.status) == (code, param, 400)
    assert "'copilot' (copilot-cli)" in error.message


@pytest.mark.parametrize(
    "body",
    [
        {"tools": TOOLS},
        {"messages": [IMAGE]},
        {"response_format": {"type": "json_object"}},
        {"n": 2},
        {"logprobs": True},
    ],
)
def test_a_backend_with_every_feature_accepts(body: dict[str, Any]) -> None:
    everything = frozenset({"tools", "images", "response_format", "n", "logprobs"})
    check_capabilities(request(**body), everything, "up", "openai")


def test_tool_choice_none_offers_no_tools_so_nothing_is_refused() -> None:
    chat = request(tools=TOOLS, tool_choice="none")
    check_capabilities(chat, frozenset(), "claude", "claude-cli")
    assert "tools" in ignored_params(chat, frozenset())


def test_sampling_is_ignored_only_by_backends_that_cannot_honour_it() -> None:
    chat = request(temperature=0.2, seed=1, bogus=True)
    assert ignored_params(chat, frozenset()) == ("temperature", "seed", "bogus")
    assert ignored_params(chat, frozenset({"sampling"})) == ("bogus",)


def test_every_cli_backend_takes_tools_and_one_without_them_refuses_naming_itself() -> None:
    chat = request(tools=TOOLS)
    for cli in (ClaudeCliBackend, ClaudeWarmBackend, CopilotCliBackend, CopilotHeadlessBackend):
        check_capabilities(chat, cli.capabilities, "cli", "cli")
    with pytest.raises(ProxyError) as caught:
        check_capabilities(chat, frozenset({"response_format"}), "gh", "copilot-cli")
    assert caught.value.code == "unsupported_parameter"
    assert "'gh'" in caught.value.message
