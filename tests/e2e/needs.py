"""A test whose tool is missing: it fails in CI, where .ci/run installs every tool, and is
skipped elsewhere (a developer may not have installed it yet)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import pytest


def missing(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def tool(name: str, hint: str) -> str:
    """``name`` from the running venv's bin (pip-installed tools), else from PATH."""
    local = Path(sys.prefix) / "bin" / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed ({hint})")
    return found
