"""The backend interface and its event vocabulary, as the backends import them.

They are defined in ``core`` (core/backend.py, core/types.py), below every package
that uses them; this module names them for the backends' own modules.
"""

from __future__ import annotations

from copilot_cli_proxy.core.backend import (
    Backend,
    BackendHealth,
    CliRunRecord,
    CliStatus,
    NodeState,
    RelayBackend,
    RunRecord,
)
from copilot_cli_proxy.core.types import (
    BackendEvent,
    Finish,
    FinishReason,
    ModelInfo,
    TextDelta,
    ToolCallEvent,
    Usage,
)

__all__ = [
    "Backend",
    "BackendEvent",
    "BackendHealth",
    "CliRunRecord",
    "CliStatus",
    "Finish",
    "FinishReason",
    "ModelInfo",
    "NodeState",
    "RelayBackend",
    "RunRecord",
    "TextDelta",
    "ToolCallEvent",
    "Usage",
]
