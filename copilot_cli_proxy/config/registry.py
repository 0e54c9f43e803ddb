"""Backend kinds: name → where its class lives, the options it takes, the variables it owns.

Like uvicorn's ``HTTP_PROTOCOLS`` map: the class is imported only when a backend of
that kind is configured, so a kind with heavy dependencies costs nothing unused.
Adding a kind is one entry here plus its module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from copilot_cli_proxy.config.options import OptionSpec

RUNNERS = ("persistent", "oneshot")

CLI_OPTIONS: dict[str, OptionSpec] = {
    "runner": OptionSpec(str, choices=RUNNERS),
    "cli_path": OptionSpec(str),
    "pool_size": OptionSpec(int, minimum=1, maximum=64),
    "allowed_tools": OptionSpec(list, item=str),
}


OPENAI_OPTIONS: dict[str, OptionSpec] = {
    "base_url": OptionSpec(str),
    "preset": OptionSpec(str),
    "auth": OptionSpec(dict),
    "headers": OptionSpec(dict, item=str),
    "timeout_s": OptionSpec(float, minimum=0, maximum=86_400),
    "models": OptionSpec(list, item=str),
}


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@dataclass(frozen=True, slots=True)
class KindInfo:
    target: str  # "package.module:factory"
    options: dict[str, OptionSpec] = field(default_factory=dict)
    # "package.module:function" checking the options together (required keys, nested
    # tables); raises ValueError naming the key.
    check: str | None = None
    # Environment variables a child process of this kind may see, besides the base list.
    env_prefixes: tuple[str, ...] = ()
    env_names: tuple[str, ...] = ()
    executable: str | None = None  # the CLI it runs, for kinds that run one

    def load(self) -> Any:
        return _load(self.target)

    def check_options(self, options: dict[str, Any]) -> None:
        if self.check is not None:
            _load(self.check)(options)


KINDS: dict[str, KindInfo] = {
    "copilot-cli": KindInfo(
        "copilot_cli_proxy.backends.factory:build_copilot",
        CLI_OPTIONS,
        env_prefixes=("COPILOT_",),
        env_names=("GH_TOKEN", "GITHUB_TOKEN", "GH_HOST"),
        executable="copilot",
    ),
    "claude-cli": KindInfo(
        "copilot_cli_proxy.backends.factory:build_claude",
        CLI_OPTIONS,
        env_prefixes=("CLAUDE_", "ANTHROPIC_"),
        executable="claude",
    ),
    # Any OpenAI-compatible HTTP API; no child process, so no environment of its own.
    "openai": KindInfo(
        "copilot_cli_proxy.backends.openai_http:build",
        OPENAI_OPTIONS,
        check="copilot_cli_proxy.backends.upstream_config:check_options",
    ),
}
