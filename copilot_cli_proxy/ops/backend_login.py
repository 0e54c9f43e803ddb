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
from copilot_cli_proxy.settings import Settings


def login_backend(spec: BackendSpec, settings: Settings, out: TextIO | None = None) -> int:
    """The exit code of the backend's own login; 2 if its kind has none."""
    out = out or sys.stdout  # looked up now: a captured stdout may have been replaced
    backend = KINDS[spec.kind].load()(spec, settings)
    login = getattr(backend, "login", None)
    if login is None:
        print(
            f"copilot-cli-proxy: backend {spec.id!r} (kind {spec.kind}) logs in through its CLI: "
            f"copilot-cli-proxy login {spec.kind.removesuffix('-cli')}",
            file=out,
        )
        return 2

    async def run() -> int:
        try:
            code: int = await login(out)
            return code
        finally:
            await backend.stop()

    try:
        return anyio.run(run)
    except KeyboardInterrupt:
        print("\nLogin interrupted.", file=out)
        return 130
