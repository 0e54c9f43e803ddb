"""Which of the server's model ids a typed name may have meant. Pure: no I/O.

The server lists its default model first in ``/v1/models``; ``server_default`` relies on
that order.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

MAX_SUGGESTIONS = 4
# difflib's similarity ratio: 0.6 (its default) misses "gpt5-mini" for "gpt-5-mini"
# far less often than it offers nonsense.
CUTOFF = 0.6


def server_default(ids: Sequence[str]) -> str | None:
    return ids[0] if ids else None


def close_matches(name: str, ids: Sequence[str]) -> list[str]:
    """Ids that contain ``name`` (any case), then ids spelled like it, best first."""
    wanted = name.lower()
    lowered = {model_id.lower(): model_id for model_id in ids}
    containing = [model_id for model_id in ids if wanted in model_id.lower()]
    similar = [
        lowered[found]
        for found in difflib.get_close_matches(wanted, list(lowered), MAX_SUGGESTIONS, CUTOFF)
    ]
    return list(dict.fromkeys(containing + similar))[:MAX_SUGGESTIONS]


def unknown_model_message(name: str, ids: Sequence[str]) -> str:
    matches = close_matches(name, ids)
    if matches:
        return f"The server has no model {name}. Did you mean: {', '.join(matches)}?"
    return f"The server has no model {name}; /models lists its {len(ids)}."
