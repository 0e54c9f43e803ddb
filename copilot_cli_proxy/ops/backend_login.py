"""``copilot-cli-proxy login <backend-id>`` for a backend of the backends file with no CLI.

An HTTP backend logs in itself (``login(out)``: a device-code flow, or a check of its
token variable); its login lands under STATE_DIR, where the running server reads it.
"""

from __future__ import annotations

import sys
from typing import TextIO

import anyio

from copilot_cli_proxy.config.backends_file import BackendSpec
from copilot_cli_proxy.config.registry import KINDS
from copilot_cli_proxy.core.backend import Backend
from copilot_cli_proxy.settings import Settings


def login_backend(spec: BackendSpec, settings: Settings, out: TextIO | None = None) -> int:
    """The exit code of the backend's own login (``Backend.login``); a CLI backend answers
    2 and names the command that logs its CLI in."""
    out = out or sys.stdout  # looked up now: a captured stdout may have been replaced
    backend: Backend = KINDS[spec.kind].load()(spec, settings)

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
