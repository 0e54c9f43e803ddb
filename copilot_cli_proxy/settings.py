"""One typed, frozen Settings object, read once from the environment (and ``.env``).

Every field is one environment variable; the console command's flags mirror them
(``cli.py`` is generated from ``FIELDS``). A bad value stops start-up with a
message that names the variable.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SERVICES = ("copilot", "claude")
RUNNERS = ("persistent", "oneshot")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
DEFAULT_MODELS = {"copilot": "gpt-5-mini", "claude": "sonnet"}


class SettingsError(ValueError):
    """A configuration value is wrong; the message names the variable."""


def _parse_int(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"must be a whole number, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"must be {bound}, got {value}")
        return value

    return parse


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def _parse_choice(choices: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def _parse_text(raw: str) -> str:
    return raw.strip()


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 3456
    service: str = "copilot"
    runner: str = "oneshot"
    pool_size: int = 1
    default_model: str = ""  # empty: the service's own default (DEFAULT_MODELS)
    copilot_cli_path: str = ""  # empty: `copilot` on PATH, else the project's node_modules
    claude_cli_path: str = ""
    request_timeout: int = 300_000  # ms
    temp_dir_base: str = ""  # empty: <system temp>/copilot-cli-proxy
    max_concurrent: int = 4
    max_queue: int = 32
    queue_timeout: int = 30_000  # ms
    models_cache_ttl: int = 600  # s
    allowed_tools: tuple[str, ...] = ()
    log_level: str = "INFO"
    log_dir: str = "logs"

    @property
    def model(self) -> str:
        return self.default_model or DEFAULT_MODELS[self.service]

    @property
    def temp_base(self) -> Path:
        if self.temp_dir_base:
            return Path(self.temp_dir_base)
        return Path(tempfile.gettempdir()) / "copilot-cli-proxy"

    @property
    def request_timeout_s(self) -> float:
        return self.request_timeout / 1000

    @property
    def queue_timeout_s(self) -> float:
        return self.queue_timeout / 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``); raise ``SettingsError``."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for spec in FIELDS:
            raw = source.get(spec.env)
            if raw is None:
                continue
            try:
                values[spec.name] = spec.parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{spec.env}: {exc}") from None
        return cls(**values)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    env: str
    parse: Callable[[str], Any]
    help: str


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("host", "HOST", _parse_text, "interface to listen on"),
    FieldSpec("port", "PORT", _parse_int(0, 65535), "TCP port (0 = any free port)"),
    FieldSpec("service", "SERVICE", _parse_choice(SERVICES), "which CLI answers: copilot|claude"),
    FieldSpec(
        "runner",
        "RUNNER",
        _parse_choice(RUNNERS),
        "persistent (long-lived CLI processes) or oneshot (one CLI process per request)",
    ),
    FieldSpec(
        "pool_size",
        "POOL_SIZE",
        _parse_int(1, 64),
        "copilot: long-lived processes; claude: warm processes kept ready",
    ),
    FieldSpec(
        "default_model", "DEFAULT_MODEL", _parse_text, "model used when a request names none"
    ),
    FieldSpec(
        "copilot_cli_path", "COPILOT_CLI_PATH", _parse_text, "path to the copilot executable"
    ),
    FieldSpec("claude_cli_path", "CLAUDE_CLI_PATH", _parse_text, "path to the claude executable"),
    FieldSpec("request_timeout", "REQUEST_TIMEOUT", _parse_int(1000), "per-request limit in ms"),
    FieldSpec("temp_dir_base", "TEMP_DIR_BASE", _parse_text, "where per-request dirs are made"),
    FieldSpec("max_concurrent", "MAX_CONCURRENT", _parse_int(1, 256), "CLI processes at once"),
    FieldSpec("max_queue", "MAX_QUEUE", _parse_int(0, 100_000), "requests waiting for a slot"),
    FieldSpec("queue_timeout", "QUEUE_TIMEOUT", _parse_int(0), "ms a request may wait for a slot"),
    FieldSpec("models_cache_ttl", "MODELS_CACHE_TTL", _parse_int(0), "seconds to cache models"),
    FieldSpec(
        "allowed_tools",
        "ALLOWED_TOOLS",
        _parse_list,
        "comma-separated CLI tools the model may use (default: none)",
    ),
    FieldSpec("log_level", "LOG_LEVEL", _parse_choice(LOG_LEVELS, upper=True), "log level"),
    FieldSpec("log_dir", "LOG_DIR", _parse_text, "directory for log files"),
)

assert {spec.name for spec in FIELDS} == {f.name for f in fields(Settings)}
