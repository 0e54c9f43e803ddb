"""Keep secrets out of every log: API keys, tokens from the environment, storage passwords."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from copilot_cli_proxy.settings import Settings

REDACTED = "[REDACTED]"
# Environment variables whose values are credentials (GH_TOKEN, CLAUDE_CODE_OAUTH_TOKEN…).
SECRET_NAME_PARTS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY", "CREDENTIAL")
# Shorter values of such variables are flags ("1", "true"), not credentials.
MIN_ENV_SECRET_LENGTH = 8
MIN_API_KEY_LENGTH = 4
# Well-known token shapes, caught even when nobody configured them here.
TOKEN_PATTERNS = (
    r"\bgh[opsur]_[A-Za-z0-9]{20,}",
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    r"\bsk-[A-Za-z0-9_-]{16,}",
    r"(?i:\bbearer)\s+[^\s\"',;]+",
)


def collect_secrets(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    secrets = [key for key in settings.api_key if len(key) >= MIN_API_KEY_LENGTH]
    for name, value in environ.items():
        value = value.strip()
        if len(value) >= MIN_ENV_SECRET_LENGTH and any(
            p in name.upper() for p in SECRET_NAME_PARTS
        ):
            secrets.append(value)
    try:
        password = urlsplit(settings.rate_limit_storage_uri).password
    except ValueError:
        password = None
    if password:
        secrets.append(password)
    return secrets


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        literal = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = re.compile("|".join([*map(re.escape, literal), *TOKEN_PATTERNS]))

    def text(self, value: str) -> str:
        return self._pattern.sub(REDACTED, value)

    def contains_secret(self, value: str) -> bool:
        return self._pattern.search(value) is not None

    def value(self, obj: Any) -> Any:
        """``obj`` with every string in it redacted (dicts, lists, tuples walked)."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.value(k): self.value(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.value(item) for item in obj]
        return obj
