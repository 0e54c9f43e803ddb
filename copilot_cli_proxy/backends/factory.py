"""Build a CLI backend from its entry in the backends file (see config/registry.py).

Each factory is typed to return a ``Backend``: mypy checks every CLI backend against
the one interface the gateway, routes, ops and the app use.

The CLI backends read their options from a ``Settings``; an entry's options become
a copy of the server's settings with that backend's values, so the same classes
serve a single-backend server and a many-backend one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from copilot_cli_proxy.backends.cli_backend import CliBackend
from copilot_cli_proxy.config.backends_file import BackendSpec
from copilot_cli_proxy.core.backend import Backend
from copilot_cli_proxy.settings import Settings


def backend_settings(spec: BackendSpec, settings: Settings, service: str) -> Settings:
    options = spec.options
    changes: dict[str, Any] = {"service": service}
    if "runner" in options:
        changes["runner"] = options["runner"]
    if "cli_path" in options:
        changes[f"{service}_cli_path"] = options["cli_path"]
    if "pool_size" in options:
        changes["pool_size"] = options["pool_size"]
    if "allowed_tools" in options:
        changes["allowed_tools"] = tuple(options["allowed_tools"])
    if spec.max_concurrent is not None:
        changes["max_concurrent"] = spec.max_concurrent
    if spec.max_queue is not None:
        changes["max_queue"] = spec.max_queue
    if spec.default_model:
        changes["default_model"] = spec.default_model
    elif settings.service != service:
        changes["default_model"] = ""  # the server's default names another CLI's model
    return replace(settings, **changes)


def _named(backend: CliBackend, spec: BackendSpec) -> CliBackend:
    backend.backend_id = spec.id
    backend.extra_env = spec.env
    return backend


def build_copilot(spec: BackendSpec, settings: Settings) -> Backend:
    from copilot_cli_proxy.backends.copilot_cli import CopilotCliBackend
    from copilot_cli_proxy.backends.copilot_headless import CopilotHeadlessBackend

    own = backend_settings(spec, settings, "copilot")
    cls = CopilotHeadlessBackend if own.runner == "persistent" else CopilotCliBackend
    return _named(cls(own), spec)


def build_claude(spec: BackendSpec, settings: Settings) -> Backend:
    from copilot_cli_proxy.backends.claude_cli import ClaudeCliBackend
    from copilot_cli_proxy.backends.claude_warm import ClaudeWarmBackend

    own = backend_settings(spec, settings, "claude")
    cls = ClaudeWarmBackend if own.runner == "persistent" else ClaudeCliBackend
    return _named(cls(own), spec)
