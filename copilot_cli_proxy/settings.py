"""One typed, frozen Settings object, read once from the environment (and ``.env``).

Every field is one environment variable; the console command's flags mirror them
(``cli.py`` is generated from ``FIELDS``). A bad value stops start-up with a
message that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from copilot_cli_proxy.runtime.workdir import default_temp_base
from copilot_cli_proxy.settings_parse import (
    is_loopback_host as is_loopback_host,  # ops/checks.py asks it here
)
from copilot_cli_proxy.settings_parse import (
    parse_api_keys,
    parse_bool,
    parse_choice,
    parse_int,
    parse_list,
    parse_proxy_addresses,
    parse_storage_uri,
    parse_text,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SERVICES = ("copilot", "claude")
RUNNERS = ("persistent", "oneshot")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
DEFAULT_MODELS = {"copilot": "gpt-5-mini", "claude": "sonnet"}
SEATS = {"copilot": "Copilot", "claude": "Claude"}


class SettingsError(ValueError):
    """A configuration value is wrong; the message names the variable."""


def _check_exposure(settings: Settings) -> None:
    """Refuse to serve a CLI login to the whole network by accident."""
    if settings.api_key or settings.allow_unauthenticated or is_loopback_host(settings.host):
        return
    # Before any backend exists: the seat at risk is what the variables name.
    seat = (
        f"backends' logins ({settings.backends_file})"
        if settings.backends_file
        else f"{SEATS[settings.service]} seat"
    )
    raise SettingsError(
        f"HOST={settings.host} is not a loopback address and API_KEY is empty: anyone on the "
        f"network could use your {seat}. Set API_KEY (one or more comma-separated keys), "
        "or keep HOST=127.0.0.1, or set ALLOW_UNAUTHENTICATED=true to accept that risk."
    )


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 3456
    service: str = "copilot"
    backends_file: str = ""  # empty: SERVICE, RUNNER, … describe the one backend
    runner: str = "persistent"
    pool_size: int = 1
    default_model: str = ""  # empty: the service's own default (DEFAULT_MODELS)
    copilot_cli_path: str = ""  # empty: `copilot` on PATH, else the project's node_modules
    claude_cli_path: str = ""
    request_timeout: int = 300_000  # ms
    temp_dir_base: str = ""  # empty: ${XDG_CACHE_HOME:-~/.cache}/copilot-cli-proxy/requests
    max_concurrent: int = 4
    max_queue: int = 32
    queue_timeout: int = 30_000  # ms
    models_cache_ttl: int = 600  # s
    allowed_tools: tuple[str, ...] = ()
    cli_env: tuple[str, ...] = ()  # extra variables the CLI may see, besides its allowlist
    log_level: str = "INFO"
    log_dir: str = "logs"
    # Gatekeeping and observability.
    api_key: tuple[str, ...] = field(default=(), repr=False)  # empty: auth off (loopback only)
    allow_unauthenticated: bool = False
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 8 * 1024 * 1024  # JSON escapes can double the text's size
    max_messages: int = 1000
    max_prompt_bytes: int = 4 * 1024 * 1024  # ~1M tokens: more than any model takes
    # Slow clients: each holds a connection (a file descriptor) for as long as it is allowed.
    header_timeout: int = 10_000  # ms from connecting (or the first byte) to the last header
    body_timeout: int = 60_000  # ms to receive the whole body (8 MB at ~1 Mbit/s)
    keep_alive_timeout: int = 5_000  # ms an idle kept-alive connection stays open
    rate_limit_max: int = 60  # 0 = off
    rate_limit_window: int = 60_000  # ms
    rate_limit_storage_uri: str = field(default="memory://", repr=False)  # may hold a password
    auth_failure_max: int = 10  # failed API keys per AUTH_FAILURE_WINDOW per address; 0 = off
    auth_failure_window: int = 60_000  # ms
    trust_proxy_headers: bool = False
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")  # proxies whose headers count
    metrics_require_key: bool = True
    log_requests: bool = True
    log_request_body: bool = False
    log_response_body: bool = False
    log_probes: bool = False  # also a request log file for /health and /metrics
    log_retention_days: int = 14
    log_rotation_mb: int = 10
    state_dir: str = ""  # empty: ~/.local/state/copilot-cli-proxy (backend logins)

    @property
    def model(self) -> str:
        return self.default_model or DEFAULT_MODELS[self.service]

    def cli_path_of(self, service: str) -> str:
        """The configured path of ``service``'s CLI (COPILOT_CLI_PATH, CLAUDE_CLI_PATH)."""
        return {"copilot": self.copilot_cli_path, "claude": self.claude_cli_path}[service]

    @property
    def temp_base(self) -> Path:
        if self.temp_dir_base:
            return Path(self.temp_dir_base)
        return default_temp_base()

    @property
    def state_path(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir).expanduser()
        return Path.home() / ".local" / "state" / "copilot-cli-proxy"

    @property
    def request_timeout_s(self) -> float:
        return self.request_timeout / 1000

    @property
    def queue_timeout_s(self) -> float:
        return self.queue_timeout / 1000

    @property
    def header_timeout_s(self) -> float:
        return self.header_timeout / 1000

    @property
    def body_timeout_s(self) -> float:
        return self.body_timeout / 1000

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
        settings = cls(**values)
        _check_exposure(settings)
        return settings


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    env: str
    parse: Callable[[str], Any]
    help: str


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("host", "HOST", parse_text, "interface to listen on"),
    FieldSpec("port", "PORT", parse_int(0, 65535), "TCP port (0 = any free port)"),
    FieldSpec("service", "SERVICE", parse_choice(SERVICES), "which CLI answers: copilot|claude"),
    FieldSpec(
        "backends_file",
        "BACKENDS_FILE",
        parse_text,
        "TOML file of backends (several CLIs side by side, aliases); overrides SERVICE",
    ),
    FieldSpec(
        "runner",
        "RUNNER",
        parse_choice(RUNNERS),
        "persistent (long-lived CLI processes) or oneshot (one CLI process per request)",
    ),
    FieldSpec(
        "pool_size",
        "POOL_SIZE",
        parse_int(1, 64),
        "copilot: long-lived processes; claude: warm processes kept ready",
    ),
    FieldSpec("default_model", "DEFAULT_MODEL", parse_text, "model used when a request names none"),
    FieldSpec("copilot_cli_path", "COPILOT_CLI_PATH", parse_text, "path to the copilot executable"),
    FieldSpec("claude_cli_path", "CLAUDE_CLI_PATH", parse_text, "path to the claude executable"),
    FieldSpec("request_timeout", "REQUEST_TIMEOUT", parse_int(1000), "per-request limit in ms"),
    FieldSpec("temp_dir_base", "TEMP_DIR_BASE", parse_text, "where per-request dirs are made"),
    FieldSpec("max_concurrent", "MAX_CONCURRENT", parse_int(1, 256), "CLI processes at once"),
    FieldSpec("max_queue", "MAX_QUEUE", parse_int(0, 100_000), "requests waiting for a slot"),
    FieldSpec("queue_timeout", "QUEUE_TIMEOUT", parse_int(0), "ms a request may wait for a slot"),
    FieldSpec("models_cache_ttl", "MODELS_CACHE_TTL", parse_int(0), "seconds to cache models"),
    FieldSpec(
        "allowed_tools",
        "ALLOWED_TOOLS",
        parse_list,
        "comma-separated CLI tools the model may use (default: none)",
    ),
    FieldSpec(
        "cli_env",
        "CLI_ENV",
        parse_list,
        "comma-separated extra environment variables the CLI may see (it gets an allowlist)",
    ),
    FieldSpec("log_level", "LOG_LEVEL", parse_choice(LOG_LEVELS, upper=True), "log level"),
    FieldSpec("log_dir", "LOG_DIR", parse_text, "directory for log files"),
    FieldSpec(
        "api_key",
        "API_KEY",
        parse_api_keys,
        "comma-separated API keys clients must send (empty: no auth, loopback HOST only)",
    ),
    FieldSpec(
        "allow_unauthenticated",
        "ALLOW_UNAUTHENTICATED",
        parse_bool,
        "serve a non-loopback HOST without API_KEY (anyone on the network can use it)",
    ),
    FieldSpec(
        "cors_origins",
        "CORS_ORIGINS",
        parse_list,
        "comma-separated browser origins allowed by CORS (default: none; * = any)",
    ),
    FieldSpec("max_body_bytes", "MAX_BODY_BYTES", parse_int(1024), "largest request body (413)"),
    FieldSpec("max_messages", "MAX_MESSAGES", parse_int(1), "most messages in one request"),
    FieldSpec(
        "max_prompt_bytes",
        "MAX_PROMPT_BYTES",
        parse_int(1),
        "largest total message text in UTF-8 bytes (413)",
    ),
    FieldSpec(
        "header_timeout",
        "HEADER_TIMEOUT",
        parse_int(100),
        "ms a client may take to send a request's headers; then the connection is closed",
    ),
    FieldSpec(
        "body_timeout",
        "BODY_TIMEOUT",
        parse_int(100),
        "ms a client may take to send a request's body (408 past it)",
    ),
    FieldSpec(
        "keep_alive_timeout",
        "KEEP_ALIVE_TIMEOUT",
        parse_int(1000),
        "ms an idle kept-alive connection stays open (whole seconds; rounded up)",
    ),
    FieldSpec(
        "rate_limit_max",
        "RATE_LIMIT_MAX",
        parse_int(0),
        "requests per RATE_LIMIT_WINDOW per API key (or client IP); 0 = no limit",
    ),
    FieldSpec(
        "rate_limit_window",
        "RATE_LIMIT_WINDOW",
        parse_int(1000),
        "rate limit window in ms (whole seconds; rounded up)",
    ),
    FieldSpec(
        "rate_limit_storage_uri",
        "RATE_LIMIT_STORAGE_URI",
        parse_storage_uri,
        "memory:// (this process) or redis://host:port/db (shared by several servers)",
    ),
    FieldSpec(
        "auth_failure_max",
        "AUTH_FAILURE_MAX",
        parse_int(0),
        "failed API keys per AUTH_FAILURE_WINDOW per client address before 429; 0 = no limit",
    ),
    FieldSpec(
        "auth_failure_window",
        "AUTH_FAILURE_WINDOW",
        parse_int(1000),
        "window for AUTH_FAILURE_MAX in ms (whole seconds; rounded up)",
    ),
    FieldSpec(
        "trust_proxy_headers",
        "TRUST_PROXY_HEADERS",
        parse_bool,
        "believe X-Forwarded-For (only behind a reverse proxy you run)",
    ),
    FieldSpec(
        "forwarded_allow_ips",
        "FORWARDED_ALLOW_IPS",
        parse_proxy_addresses,
        "with TRUST_PROXY_HEADERS: the proxies (IPs, networks, or *) whose headers count",
    ),
    FieldSpec(
        "metrics_require_key",
        "METRICS_REQUIRE_KEY",
        parse_bool,
        "GET /metrics needs an API key when keys are set",
    ),
    FieldSpec("log_requests", "LOG_REQUESTS", parse_bool, "one JSON file per request"),
    FieldSpec(
        "log_request_body",
        "LOG_REQUEST_BODY",
        parse_bool,
        "put request bodies in the request logs",
    ),
    FieldSpec(
        "log_response_body",
        "LOG_RESPONSE_BODY",
        parse_bool,
        "put response bodies in the request logs",
    ),
    FieldSpec(
        "log_probes",
        "LOG_PROBES",
        parse_bool,
        "also write request log files for GET /health and /metrics",
    ),
    FieldSpec(
        "log_retention_days",
        "LOG_RETENTION_DAYS",
        parse_int(1),
        "days log files and request log folders are kept",
    ),
    FieldSpec(
        "log_rotation_mb", "LOG_ROTATION_MB", parse_int(1), "size (MB) at which a log rotates"
    ),
    FieldSpec(
        "state_dir",
        "STATE_DIR",
        parse_text,
        "where HTTP backends keep their logins (default ~/.local/state/copilot-cli-proxy)",
    ),
)

assert {spec.name for spec in FIELDS} == {f.name for f in fields(Settings)}
