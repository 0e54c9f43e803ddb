"""Thousands of malformed request bodies through the whole stack: never a 5xx, every
answer an OpenAI envelope with a request id, one request log each, and the server
healthy afterwards.

In-process (httpx over ASGI, one event loop) against ``create_app`` with the real middleware and
a scripted backend, so a few thousand requests take seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from loguru import logger

from copilot_cli_proxy.errors import ERROR_TABLE
from copilot_cli_proxy.protocol.requests import REASONING_EFFORTS, ROLES
from tests.unit.scripted import MODEL, chat_body, client, request_logs, scripted_app

EXAMPLES = 3000
KEY = "fuzz-key-0001"

# Values no field expects, chosen once: drawing from a list is far cheaper than
# building a random tree for every field, which keeps thousands of examples fast.
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**64,
    1.5,
    "",
    " ",
    "x",
    "🎉",
    "\x00",
    "a" * 3000,
    [],
    {},
    [None],
    {"": None},
    [[[]]],
    {"type": "text"},
    [{"type": "text", "text": 1}],
]
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
odd = st.sampled_from(ODD_VALUES)
content_parts = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text", "input_text", "refusal", "image_url", "input_audio", "file", "bogus", None]
        )
    },
    optional={"text": st.text(max_size=30) | odd, "refusal": odd},
)
tool_calls = st.lists(
    st.fixed_dictionaries(
        {"id": st.text(max_size=6)},
        optional={
            "function": st.fixed_dictionaries(
                {}, optional={"name": odd, "arguments": st.text(max_size=20)}
            )
            | odd
        },
    )
    | odd,
    max_size=2,
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from([*ROLES, "robot", ""]) | odd,
        "content": st.text(max_size=60) | st.lists(content_parts, max_size=3) | odd | json_values,
        "name": st.text(max_size=10) | odd,
        "tool_calls": tool_calls | odd,
        "tool_call_id": st.text(max_size=8) | odd,
    },
)
chat_like = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from([MODEL, "", "gpt-unknown", "../../etc/passwd"]) | odd,
        "messages": st.lists(messages, max_size=4) | odd | json_values,
        "stream": st.booleans() | odd,
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans() | odd})
        | odd,
        "stop": st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=6) | odd,
        "n": st.integers(-2, 3) | odd,
        "tools": odd,
        "tool_choice": st.sampled_from(["none", "auto", "required"]) | odd,
        "response_format": st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "json_object", "json_schema"])}
        )
        | odd,
        "logprobs": odd,
        "reasoning_effort": st.sampled_from(REASONING_EFFORTS) | odd,
        "temperature": odd,
        "modalities": odd,
        "audio": odd,
    },
)

# Close to valid: most of these are answered, so the success path is fuzzed too.
nearly_valid = st.fixed_dictionaries(
    {
        "model": st.just(MODEL),
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["user", "system", "developer", "assistant"]),
                    "content": st.text(max_size=40),
                }
            ),
            min_size=1,
            max_size=3,
        ).map(lambda found: [*found, {"role": "user", "content": "hi"}]),
    },
    optional={
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
        "stop": st.lists(st.text(min_size=1, max_size=3), max_size=4),
        "temperature": st.floats(0, 2),
        "reasoning_effort": st.sampled_from(REASONING_EFFORTS),
        "n": st.just(1),
    },
)


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def insert(raw: bytes, at: int, junk: bytes) -> bytes:
    at = min(at, len(raw))
    return raw[:at] + junk + raw[at:]


def nested(depth: int, kind: int) -> bytes:
    if kind == 0:
        return b"[" * depth + b"]" * depth
    if kind == 1:
        return b'{"messages":' + b"[" * depth + b"]" * depth + b"}"
    return b'{"a":' * depth + b"1" + b"}" * depth


bodies = st.one_of(
    nearly_valid.map(dumps),
    st.binary(max_size=300),
    json_values.map(dumps),
    chat_like.map(dumps),
    st.builds(insert, chat_like.map(dumps), st.integers(0, 400), st.binary(min_size=1, max_size=8)),
    chat_like.map(dumps).flatmap(lambda raw: st.integers(0, len(raw)).map(lambda i: raw[:i])),
    st.builds(nested, st.integers(1, 20_000), st.integers(0, 2)),
    chat_like.map(lambda v: json.dumps(v, ensure_ascii=False).encode("latin-1", "replace")),
    chat_like.map(lambda v: json.dumps(v).encode("utf-16")),
    st.sampled_from(
        [
            b'{"messages":[{"role":"user","content":"\\ud800"}]}',
            b'{"messages":[{"role":"user","content":"a\\u0000b"}]}',
            b'{"messages":[{"role":"user","content":"hi"}],"temperature":NaN}',
            b'{"messages":[{"role":"user","content":"hi"}],"n":1e999}',
            b'{"messages":[{"role":"user","content":"hi"}]}\x00',
            b"\xef\xbb\xbf{}",
            b"null",
            b"   ",
        ]
    ),
)
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
requests = st.fixed_dictionaries(
    {
        "body": bodies,
        "path": st.sampled_from(["/v1/chat/completions", "/chat/completions"]),
        "content_type": st.sampled_from(
            ["application/json", "text/plain", "", "multipart/form-data; boundary=x"]
        ),
        # Mostly the right key, so bodies get past the gate; sometimes junk.
        "auth": st.tuples(st.sampled_from([True] * 9 + [False]), header_text).map(
            lambda pair: f"Bearer {KEY}" if pair[0] else pair[1]
        ),
        "request_id": st.none() | header_text,
    }
)


@pytest.fixture
def error_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="ERROR")
    try:
        yield lines
    finally:
        logger.remove(sink)


def test_malformed_bodies_never_break_the_server(tmp_path: Path, error_lines: list[str]) -> None:
    app = scripted_app(tmp_path, api_key=(KEY,), max_body_bytes=64 * 1024)
    sent = 0
    statuses: dict[int, int] = {}

    # One event loop for the whole run, one thread hop per request (TestClient makes
    # several): the requests then cost about what the server spends on them.
    with start_blocking_portal() as portal:
        http = client(app)

        def post(path: str, **kwargs: Any) -> httpx.Response:
            return portal.call(partial(http.post, path, **kwargs))

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(requests)
        def one_request(case: dict[str, Any]) -> None:
            nonlocal sent
            # Bytes: header values outside ASCII must reach the server as sent.
            headers = {"Authorization": case["auth"].encode("latin-1")}
            if case["content_type"]:
                headers["Content-Type"] = case["content_type"].encode("latin-1")
            if case["request_id"] is not None:
                headers["X-Request-ID"] = case["request_id"].encode("latin-1")
            response = post(case["path"], content=case["body"], headers=headers)
            sent += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, response.text
            assert response.headers["x-request-id"]
            if response.status_code >= 400:
                error = response.json()["error"]
                assert ERROR_TABLE[error["code"]][:2] == (response.status_code, error["type"])
                assert isinstance(error["message"], str) and error["message"]

        one_request()

        assert sent == EXAMPLES
        assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0  # both paths were fuzzed
        assert portal.call(http.get, "/health").status_code == 200
        answer = post(
            "/v1/chat/completions", json=chat_body("still here"), headers={"x-api-key": KEY}
        )
        assert answer.json()["choices"][0]["message"]["content"] == "echo: still here"

    assert error_lines == []
    # Exactly one record per request: the fuzzed ones and the last answer (a /health
    # probe leaves none unless LOG_PROBES=true).
    assert len(request_logs(tmp_path)) == sent + 1
