"""``copilot-cli-proxy login <backend-id>`` for a backend of the backends file.

A CLI backend runs its CLI's own login (``login_argv()``) with that backend's CLI path
and environment allowlist (``child_env()``: its kind's variables and its entry's
``env``), so the login lands where that backend's CLI looks. A backend without a CLI
logs in itself (``login(out)``: a device-code flow, or a check of its token variable);
its login lands under STATE_DIR, where the running server reads it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

import anyio

from copilot_cli_proxy.backends.cli_backend import CliBackend
from copilot_cli_proxy.config.backends_file import (
    BackendsFileError,
    BackendSpec,
    GatewayConfig,
    load_backends_file,
)
from copilot_cli_proxy.config.registry import KINDS
from copilot_cli_proxy.core.backend import Backend
from copilot_cli_proxy.ops.login import run_backend_login
from copilot_cli_proxy.settings import Settings

USAGE_ERROR = 2


def unknown_backend_message(backend_id: str, config: GatewayConfig) -> str:
    ids = ", ".join(spec.id for spec in config.backends)
    return (
        f"copilot-cli-proxy: login {backend_id!r}: {config.source} has no backend with that "
        f"id; its backends: {ids}"
    )


def login_file_backend(
    backend_id: str,
    settings: Settings,
    extra: Sequence[str] = (),
    out: TextIO | None = None,
) -> int:
    """Log in the backend ``backend_id`` of ``settings.backends_file``; the exit code."""
    try:
        config = load_backends_file(settings.backends_file)
    except BackendsFileError as exc:
        print(f"copilot-cli-proxy: {exc}", file=sys.stderr)
        return USAGE_ERROR
    try:
        spec = config.backend(backend_id)
    except KeyError:
        print(unknown_backend_message(backend_id, config), file=sys.stderr)
        return USAGE_ERROR
    return login_backend(spec, settings, out, extra)


def login_backend(
    spec: BackendSpec, settings: Settings, out: TextIO | None = None, extra: Sequence[str] = ()
) -> int:
    """The exit code of the login of the backend ``spec`` describes."""
    try:
        backend: Backend = KINDS[spec.kind].load()(spec, settings)
    except ValueError as exc:
        print(f"copilot-cli-proxy: {exc}", file=sys.stderr)
        return USAGE_ERROR
    out = out or sys.stdout  # looked up now: a captured stdout may have been replaced
    if isinstance(backend, CliBackend):
        return run_backend_login(backend, extra, out)
    if extra:
        print(
            f"copilot-cli-proxy: backend {spec.id!r} (kind {spec.kind}) runs no CLI: "
            f"arguments after -- are not used ({' '.join(extra)})",
            file=sys.stderr,
        )
        return USAGE_ERROR
    return _run_own_login(backend, out)


def _run_own_login(backend: Backend, out: TextIO) -> int:
    async def run() -> int:
        try:
            return await backend.login(out)
        finally:
            await backend.stop()

    try:
        return anyio.run(run)
    except KeyboardInterrupt:
        print("\nLogin interrupted.", file=out)
        return 130
