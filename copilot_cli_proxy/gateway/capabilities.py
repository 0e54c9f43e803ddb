"""What a request asks of its backend, and the refusal when the backend cannot do it.

Each backend declares the features it honours. A request that needs one it lacks is
a 400 naming the backend, the field and what to do; sampling knobs it cannot honour
are not refused but reported back as ignored (``x-ignored-params``).
"""

from __future__ import annotations

from dataclasses import dataclass

from copilot_cli_proxy.core.request import ChatRequest
from copilot_cli_proxy.errors import ProxyError

# feature → why it changes the meaning of the answer (said in the refusal)
FEATURES = {
    "tools": "function calling",
    "images": "image input",
    "response_format": "structured output",
    "n": "several answers per request",
    "logprobs": "log probabilities",
    "audio": "audio output",
}
SAMPLING = "sampling"  # honours temperature, max_tokens, seed, … (else they are ignored)


@dataclass(frozen=True, slots=True)
class Need:
    feature: str
    param: str


def needs(request: ChatRequest) -> list[Need]:
    """The features this request cannot be answered faithfully without."""
    found: list[Need] = []
    choice = request.tool_choice
    if request.tools and choice != "none":
        found.append(Need("tools", "tools"))
    if any(m.images for m in request.messages):
        index = next(i for i, m in enumerate(request.messages) if m.images)
        found.append(Need("images", f"messages[{index}].content"))
    if request.response_format is not None:
        found.append(Need("response_format", "response_format"))
    if request.n > 1:
        found.append(Need("n", "n"))
    if request.logprobs:
        found.append(Need("logprobs", "logprobs"))
    if any(m != "text" for m in request.modalities):
        found.append(Need("audio", "modalities"))
    return found


def check_capabilities(
    request: ChatRequest, capabilities: frozenset[str], backend_id: str, kind: str
) -> None:
    for need in needs(request):
        if need.feature not in capabilities:
            code = "unsupported_content" if need.feature == "images" else "unsupported_parameter"
            raise ProxyError(
                code,
                f"'{need.param}' asks for {FEATURES[need.feature]}, which backend "
                f"{backend_id!r} ({kind}) does not support. Send the request without it, or "
                "to a model of a backend that supports it.",
                param=need.param,
            )


def ignored_params(request: ChatRequest, capabilities: frozenset[str]) -> tuple[str, ...]:
    """Fields this backend accepts but cannot honour, to report in ``x-ignored-params``."""
    ignored = () if SAMPLING in capabilities else request.ignored_params
    if request.tools and request.tool_choice == "none" and "tools" not in capabilities:
        ignored += ("tools",)
    if request.parallel_tool_calls is not None and "tools" not in capabilities:
        ignored += ("parallel_tool_calls",)
    return ignored + request.unknown_params
