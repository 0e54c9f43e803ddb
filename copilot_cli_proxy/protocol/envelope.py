"""The JSON body and the OpenAI error envelope that every answer, route or gate, is sent in."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from copilot_cli_proxy.errors import ProxyError


def json_bytes(payload: Any) -> bytes:
    # backslashreplace: an unpaired surrogate becomes its JSON escape, not an exception.
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace")


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def error_response(error: ProxyError) -> Response:
    return JSONBody(error.body(), status_code=error.status, headers=error.headers())
