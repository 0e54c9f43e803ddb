"""A tiny OpenAI-compatible server for the chat REPL's end-to-end test.

Real HTTP on loopback, real SSE chunks in the OpenAI shape; standard library only, so
it starts in a fraction of a second. Run ``python chat_stub_server.py --api-key KEY``:
it prints ``PORT <n>`` once it listens.

Behaviour, chosen so a terminal transcript shows what the client sent:
- models ``stub-fast`` (default) and ``stub-slow`` (one piece every 0.2 s, for a minute);
  any other model is a 404 whose message lists the valid ids, like the real proxy's;
- the answer echoes the model, the number of messages, the system prompt and the last
  user text;
- a last user text containing ``please rate limit`` gets a 429 with ``Retry-After: 7``,
  and one containing ``please fail midway`` gets a few chunks, then an SSE error event;
- a wrong ``Authorization`` gets a 401;
- ``GET /_stub/requests`` lists every chat request seen, with how it ended.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODELS = ("stub-fast", "stub-slow")
DEFAULT_MODEL = "stub-fast"
SLOW_PIECE_DELAY_S = 0.2
SLOW_PIECES = 300


class StubState:
    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)


def error_body(message: str, type_: str, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def echo_answer(model: str, messages: list[dict[str, Any]]) -> str:
    system = next((m["content"] for m in messages if m.get("role") == "system"), None)
    last = messages[-1].get("content", "") if messages else ""
    return f"Echo from {model} (messages={len(messages)}, system={system or 'none'}): {last}"


def split_pieces(text: str) -> list[str]:
    """Word-sized deltas that keep their spaces, like a model's tokens."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


class Handler(BaseHTTPRequestHandler):
    server: StubServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test reads the REPL's output, not ours

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def authorized(self) -> bool:
        key = self.server.state.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self.send_json(
            401, error_body("Invalid API key.", "authentication_error", "invalid_api_key")
        )
        return False

    def do_GET(self) -> None:
        if self.path == "/_stub/requests":
            with self.server.state.lock:
                self.send_json(200, self.server.state.requests)
            return
        if not self.authorized():
            return
        if self.path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in MODELS]
            self.send_json(200, {"object": "list", "data": data})
            return
        self.send_json(
            404, error_body(f"No route {self.path}.", "invalid_request_error", "not_found")
        )

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            self.send_json(404, error_body("No such route.", "invalid_request_error", "not_found"))
            return
        if not self.authorized():
            return
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        model = body.get("model") or DEFAULT_MODEL
        messages = body.get("messages", [])
        entry: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": bool(body.get("stream")),
            "outcome": "started",
        }
        self.server.state.record(entry)
        last = str(messages[-1].get("content", "")) if messages else ""
        if model not in MODELS:
            entry["outcome"] = "404"
            message = (
                f"The model {model!r} does not exist or is not served here. "
                f"Available models: {', '.join(MODELS)}."
            )
            self.send_json(
                404, error_body(message, "invalid_request_error", "model_not_found", "model")
            )
            return
        if "please rate limit" in last:
            entry["outcome"] = "429"
            self.send_json(
                429,
                error_body("Too many requests.", "rate_limit_error", "rate_limit_exceeded"),
                {"Retry-After": "7"},
            )
            return
        if model == "stub-slow":
            pieces = [f"tick{i} " for i in range(SLOW_PIECES)]
        else:
            pieces = split_pieces(echo_answer(model, messages))
        if not body.get("stream"):
            entry["outcome"] = "completed"
            self.send_json(200, completion(model, "".join(pieces)))
            return
        try:
            entry["outcome"] = self.stream(model, pieces, fail="please fail midway" in last)
        except (BrokenPipeError, ConnectionResetError):
            entry["outcome"] = "client_gone"

    def stream(self, model: str, pieces: list[str], *, fail: bool) -> str:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.event(chunk(model, {"role": "assistant", "content": ""}))
        for index, piece in enumerate(pieces):
            if fail and index == 3:
                self.event(error_body("The CLI crashed.", "server_error", "cli_failed"))
                return "failed_midway"
            if model == "stub-slow":
                time.sleep(SLOW_PIECE_DELAY_S)
            self.event(chunk(model, {"content": piece}))
        self.event(chunk(model, {}, finish_reason="stop"))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        return "completed"

    def event(self, data: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
        self.wfile.flush()


def completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, state: StubState) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.state = state


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    server = StubServer(args.port, StubState(args.api_key))
    # Port 0 lets the kernel pick a free port; the test reads it from this line.
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
