"""The OpenAI wire format as an upstream speaks it: the body we send, SSE events, model lists.

Pure functions and a line-fed SSE decoder, unit-tested without a network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from copilot_cli_proxy.backends.models import owned_by
from copilot_cli_proxy.backends.upstream_config import CatalogFormat
from copilot_cli_proxy.core.types import ModelInfo

DONE = "[DONE]"


def upstream_payload(
    body: Mapping[str, Any], *, model: str, stream: bool, include_usage: bool
) -> dict[str, Any]:
    """The client's request as the upstream gets it: its model id, our stream choice."""
    payload = dict(body)
    payload["model"] = model
    if stream:
        payload["stream"] = True
        if include_usage:
            options = payload.get("stream_options")
            payload["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
    else:
        payload.pop("stream", None)
        # OpenAI refuses stream_options without stream.
        payload.pop("stream_options", None)
    return payload


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    # Compact and UTF-8 as is: the body is sent once more on a retry, byte for byte.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class SseDecoder:
    """Server-sent events, fed line by line (WHATWG rules): the data of each event.

    ``event:``, ``id:``, ``retry:`` and comment lines are skipped: OpenAI-compatible
    upstreams put everything in ``data:``.
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        if not line:
            if not self._data:
                return None
            data = "\n".join(self._data)
            self._data.clear()
            return data
        if line.startswith("data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def end(self) -> str | None:
        """An event left open when the stream ended (no final blank line)."""
        return self.feed("")


def finishes(chunk: Mapping[str, Any]) -> bool:
    """Whether a chunk carries a ``finish_reason``: the answer is complete."""
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return False
    return any(isinstance(c, dict) and c.get("finish_reason") for c in choices)


def stream_error(chunk: Mapping[str, Any]) -> str | None:
    """The message of an ``{"error": …}`` object sent inside a stream, if this is one."""
    error = chunk.get("error")
    if error is None:
        return None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "unknown error")
    return str(error)


def parse_model_list(data: Any, catalog: CatalogFormat, backend_id: str) -> list[ModelInfo]:
    """``GET {base_url}/models`` (OpenAI: ``{"data": [...]}``) or GitHub Models' catalog
    (a JSON array); chat models only where the catalog says what a model outputs."""
    entries = data.get("data") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError('the model list is neither {"data": [...]} nor a list')
    models: list[ModelInfo] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        model_id: str = entry["id"]
        outputs = entry.get("supported_output_modalities")
        if isinstance(outputs, list) and "text" not in outputs:
            continue  # embeddings and image models: nothing a chat completion can use
        owner = entry.get("owned_by") or entry.get("publisher")
        if not isinstance(owner, str) or not owner:
            owner = model_owner(model_id, backend_id)
        name = entry.get("name") if catalog == "github" else None
        models.append(ModelInfo(model_id, owner, name if isinstance(name, str) else None))
    return models


def model_owner(model_id: str, backend_id: str) -> str:
    """``openai/gpt-4.1`` is OpenAI's; a bare id by its name, else the backend's."""
    if "/" in model_id:
        return model_id.partition("/")[0]
    return owned_by(model_id, backend_id)


def configured_models(ids: tuple[str, ...], backend_id: str) -> list[ModelInfo]:
    return [ModelInfo(i, model_owner(i, backend_id)) for i in ids]
