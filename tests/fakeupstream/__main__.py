"""Run the fake upstream as its own process (bench/upstream.py): answers at once.

python -m tests.fakeupstream --port 8100 --tokens 200
"""

from __future__ import annotations

import argparse

import uvicorn

from tests.fakeupstream.server import FakeUpstream


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=200, help="streamed deltas per answer")
    args = parser.parse_args()
    # One 4-character piece per delta (a "token"), each different: LiteLLM ends a stream
    # that repeats one chunk too often, taking it for a model stuck in a loop.
    fake = FakeUpstream(default_text="".join(f"w{i % 1000:03d}" for i in range(args.tokens)))
    fake.record = False  # a long benchmark must not grow a list of every request
    uvicorn.run(fake.app(), host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
