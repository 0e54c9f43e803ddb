"""One streamed and one non-streamed chat with a Python client library against the server;
prints what the client got as one JSON object. Used by tests/e2e/test_clients.py.

    python tests/clients/python_clients.py <openai|langchain|litellm> <base_url> <model> <question>

Each client runs in a process of its own: litellm takes seconds to import and leaves
its own event loop and sockets open at exit, which must not touch the test process.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

Result = dict[str, Any]


def with_openai(base_url: str, model: str, question: str) -> dict[str, Result]:
    import openai

    messages: Any = [{"role": "user", "content": question}]
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
        completion = client.chat.completions.create(model=model, messages=messages)
        plain = {
            "content": completion.choices[0].message.content,
            "finish_reason": completion.choices[0].finish_reason,
            "total_tokens": completion.usage.total_tokens if completion.usage else None,
        }
        pieces: list[str] = []
        finish_reason = total_tokens = None
        with client.chat.completions.create(
            model=model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        ) as stream:
            for chunk in stream:
                for choice in chunk.choices:
                    pieces.append(choice.delta.content or "")
                    finish_reason = choice.finish_reason or finish_reason
                if chunk.usage:
                    total_tokens = chunk.usage.total_tokens
    streamed = {
        "content": "".join(pieces),
        "pieces": len([p for p in pieces if p]),
        "finish_reason": finish_reason,
        "total_tokens": total_tokens,
    }
    return {"plain": plain, "stream": streamed}


def with_langchain(base_url: str, model: str, question: str) -> dict[str, Result]:
    from langchain_openai import ChatOpenAI

    # stream_usage=True: without it LangChain does not ask for the usage chunk.
    llm = ChatOpenAI(
        base_url=base_url, api_key="unused", model=model, max_retries=0, stream_usage=True
    )
    reply = llm.invoke(question)
    plain = {
        "content": reply.content,
        "finish_reason": reply.response_metadata.get("finish_reason"),
        "total_tokens": (reply.usage_metadata or {}).get("total_tokens"),
    }
    chunks = list(llm.stream(question))
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole = whole + chunk
    streamed = {
        "content": whole.content,
        "pieces": len([c for c in chunks if c.content]),
        "finish_reason": whole.response_metadata.get("finish_reason"),
        "total_tokens": (whole.usage_metadata or {}).get("total_tokens"),
    }
    return {"plain": plain, "stream": streamed}


def with_litellm(base_url: str, model: str, question: str) -> dict[str, Result]:
    # The bundled price list: litellm would otherwise fetch one at import.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # "openai/<id>": litellm's prefix for any OpenAI-compatible server at api_base.
    options: dict[str, Any] = {
        "model": f"openai/{model}",
        "api_base": base_url,
        "api_key": "unused",
        "messages": [{"role": "user", "content": question}],
        "num_retries": 0,
    }
    reply: Any = litellm.completion(**options)
    plain = {
        "content": reply.choices[0].message.content,
        "finish_reason": reply.choices[0].finish_reason,
        "total_tokens": reply.usage.total_tokens,
    }
    pieces: list[str] = []
    finish_reason = total_tokens = None
    stream: Any = litellm.completion(**options, stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish_reason = choice.finish_reason or finish_reason
        usage = getattr(chunk, "usage", None)
        if usage:
            total_tokens = usage.total_tokens
    streamed = {
        "content": "".join(pieces),
        "pieces": len([p for p in pieces if p]),
        "finish_reason": finish_reason,
        "total_tokens": total_tokens,
    }
    return {"plain": plain, "stream": streamed}


CLIENTS = {"openai": with_openai, "langchain": with_langchain, "litellm": with_litellm}


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in CLIENTS:
        print(__doc__, file=sys.stderr)
        return 2
    name, base_url, model, question = argv
    print(json.dumps(CLIENTS[name](base_url, model, question)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
