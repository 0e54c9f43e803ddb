"""Where the chat connects and how: flags first, then the environment, then defaults."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_SERVER_URL = "http://127.0.0.1:3456"
# The openai SDK refuses to build a client without a key; a server started without
# API_KEYS ignores it, and one started with them answers 401, which we explain.
PLACEHOLDER_API_KEY = "copilot-chat-no-key"

ENV_SERVER_URL = "COPILOT_SERVER_URL"
ENV_MODEL = "COPILOT_MODEL"
ENV_API_KEY = "COPILOT_API_KEY"


@dataclass(frozen=True, slots=True)
class ChatConfig:
    server_url: str = DEFAULT_SERVER_URL
    model: str | None = None  # None: let the server pick its default model
    system: str | None = None
    api_key: str | None = None
    stream: bool = True

    @property
    def api_base(self) -> str:
        """The OpenAI base URL: ``<server>/v1``, also when the user already wrote ``/v1``."""
        base = self.server_url.rstrip("/")
        return base if base.endswith("/v1") else base + "/v1"

    @property
    def effective_api_key(self) -> str:
        return self.api_key or PLACEHOLDER_API_KEY


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="copilot-chat",
        description="Chat in the terminal with a copilot-cli-proxy server (or any "
        "OpenAI-compatible server). Type /help inside for the commands.",
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help=f"server base URL (env {ENV_SERVER_URL}, default {DEFAULT_SERVER_URL})",
    )
    parser.add_argument(
        "--model", metavar="NAME", help=f"model id (env {ENV_MODEL}, default: the server's)"
    )
    parser.add_argument("--system", metavar="PROMPT", help="system prompt for the conversation")
    parser.add_argument("--api-key", metavar="KEY", help=f"API key (env {ENV_API_KEY})")
    parser.add_argument(
        "--no-stream",
        action="store_true",
        help="wait for the whole answer instead of streaming it",
    )
    return parser


def _first(*values: str | None) -> str | None:
    # An empty flag or variable (COPILOT_MODEL=) means "not set", not "the empty name".
    for value in values:
        if value is not None and value.strip():
            return value.strip()
    return None


def resolve_config(argv: Sequence[str] | None, env: Mapping[str, str]) -> ChatConfig:
    """Flags beat environment variables, which beat the defaults.

    Exits with status 2 on bad flags (argparse's usual behaviour).
    """
    args = build_parser().parse_args(argv)
    return ChatConfig(
        server_url=_first(args.server, env.get(ENV_SERVER_URL)) or DEFAULT_SERVER_URL,
        model=_first(args.model, env.get(ENV_MODEL)),
        # A system prompt is text: keep its inner whitespace, drop only an empty one.
        system=args.system if args.system and args.system.strip() else None,
        api_key=_first(args.api_key, env.get(ENV_API_KEY)),
        stream=not args.no_stream,
    )
