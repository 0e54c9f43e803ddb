"""X-Request-ID: the client's own when it is sane, a fresh one otherwise.

The id names the request's log file and is echoed in a response header, so a sane
id is short and made of characters that are harmless in both: letters, digits and
``._-``, starting with a letter or digit (never ``..``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence

MAX_REQUEST_ID_LENGTH = 128
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_sane_request_id(value: str) -> bool:
    return len(value) <= MAX_REQUEST_ID_LENGTH and _SANE_ID.fullmatch(value) is not None


def pick_request_id(
    offered: Sequence[str], is_secret: Callable[[str], bool] = lambda _: False
) -> str:
    """The one id the client sent, if sane and not a secret; else a new one."""
    if len(offered) == 1:
        value = offered[0].strip(" \t")  # HTTP whitespace only
        if is_sane_request_id(value) and not is_secret(value):
            return value
    return new_request_id()
