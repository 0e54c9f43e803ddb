"""The options of a ``kind = "openai"`` backend, checked: base URL, auth, headers, preset.

```toml
[[backend]]
id = "ghmodels"
kind = "openai"
preset = "github-models"                          # base URL, auth and model catalog
auth = { type = "bearer", token_env = "GITHUB_TOKEN" }
headers = { "X-Team" = "docs" }
```

Pure functions: the backends file calls ``check_options`` while it loads, so a
mistake stops start-up naming the key; the backend calls ``parse_upstream_config``
for the same checks and gets the values.

No default here borrows another product's OAuth client id or sends editor headers:
GitHub's terms forbid impersonating its editors, and accounts have been suspended for
it. The operator's own OAuth app (``device-code``) or token (``bearer``) is the way.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# RFC 9110 token characters: anything else cannot be a header name.
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
DEFAULT_TIMEOUT_S = 600.0
AUTH_TYPES = ("none", "bearer", "device-code")

# Headers that make a request pass for one of GitHub's editors: never sent from here.
IMPERSONATING_HEADERS = frozenset(
    {"editor-version", "editor-plugin-version", "copilot-integration-id"}
)
# Other products' OAuth apps (GitHub's Copilot editor plugins and CLI): borrowing one is
# impersonation too. Documented in the project's HTTP backends reference, part 2.1.
BORROWED_CLIENT_IDS = frozenset(
    {"Iv1.b507a08c87ecfe98", "Iv23ctfURkiMfJ4xr5mv", "Ov23ctDVkRmgkPke0Mmm"}
)

CatalogFormat = Literal["openai", "github"]


@dataclass(frozen=True, slots=True)
class NoAuth:
    type: Literal["none"] = "none"


@dataclass(frozen=True, slots=True)
class BearerAuth:
    token_env: str  # read at request time, so a rotated token is used at once
    type: Literal["bearer"] = "bearer"


@dataclass(frozen=True, slots=True)
class DeviceCodeAuth:
    """RFC 8628 with the operator's own OAuth app."""

    client_id: str
    device_authorization_url: str
    token_url: str
    scope: str = ""
    type: Literal["device-code"] = "device-code"


AuthConfig = NoAuth | BearerAuth | DeviceCodeAuth


@dataclass(frozen=True, slots=True)
class Preset:
    base_url: str
    auth: Mapping[str, str]
    device_authorization_url: str
    token_url: str
    catalog: CatalogFormat


PRESETS: dict[str, Preset] = {
    # GitHub Models: documented REST API (docs.github.com/rest/models), its own rate limits.
    "github-models": Preset(
        base_url="https://models.github.ai/inference",
        auth={"type": "bearer", "token_env": "GITHUB_TOKEN"},
        device_authorization_url="https://github.com/login/device/code",
        token_url="https://github.com/login/oauth/access_token",  # noqa: S106 - a URL
        catalog="github",
    ),
}


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    base_url: str  # no trailing slash; requests go to {base_url}/chat/completions
    auth: AuthConfig
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    models: tuple[str, ...] = ()
    catalog: CatalogFormat = "openai"
    preset: str | None = None

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def models_url(self) -> str:
        if self.catalog == "github":
            # The catalog sits beside the inference API: {origin}/catalog/models.
            parts = urlsplit(self.base_url)
            return f"{parts.scheme}://{parts.netloc}/catalog/models"
        return f"{self.base_url}/models"


def check_options(options: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the key for anything wrong (the backends file's hook)."""
    parse_upstream_config(options)


def parse_upstream_config(options: Mapping[str, Any]) -> UpstreamConfig:
    preset_name = options.get("preset")
    preset = None
    if preset_name is not None:
        preset = PRESETS.get(preset_name)
        if preset is None:
            raise ValueError(
                f"key 'preset' must be one of {', '.join(sorted(PRESETS))}, got {preset_name!r}"
            )
    raw_url = options.get("base_url", preset.base_url if preset else None)
    if raw_url is None:
        raise ValueError(
            "needs key 'base_url' (requests go to {base_url}/chat/completions), "
            "or a 'preset' such as \"github-models\""
        )
    base_url = _check_url("base_url", raw_url, plain_http="anywhere")
    auth = parse_auth(options.get("auth", preset.auth if preset else {"type": "none"}), preset)
    timeout_s = float(options.get("timeout_s", DEFAULT_TIMEOUT_S))
    if not timeout_s > 0:
        raise ValueError(f"key 'timeout_s' must be more than 0 seconds, got {timeout_s}")
    return UpstreamConfig(
        base_url=base_url,
        auth=auth,
        headers=_check_headers(options.get("headers", {})),
        timeout_s=timeout_s,
        models=_check_models(options.get("models", ())),
        catalog=preset.catalog if preset else "openai",
        preset=preset_name,
    )


def parse_auth(raw: Any, preset: Preset | None = None) -> AuthConfig:
    if not isinstance(raw, Mapping):
        raise ValueError(
            'key \'auth\' must be a table such as { type = "bearer", token_env = "MY_TOKEN" }'
        )
    kind = raw.get("type")
    if kind not in AUTH_TYPES:
        raise ValueError(f"key 'auth': 'type' must be one of {', '.join(AUTH_TYPES)}, got {kind!r}")
    allowed = {
        "none": {"type"},
        "bearer": {"type", "token_env"},
        "device-code": {"type", "client_id", "device_authorization_url", "token_url", "scope"},
    }[kind]
    for key, value in raw.items():
        if key not in allowed:
            raise ValueError(
                f"key 'auth': {key!r} does not apply to type {kind!r} "
                f"(it takes: {', '.join(sorted(allowed))})"
            )
        if not isinstance(value, str):
            raise ValueError(f"key 'auth': {key!r} must be a string, got {value!r}")
    if kind == "none":
        return NoAuth()
    if kind == "bearer":
        default_env = preset.auth.get("token_env") if preset else None
        token_env = raw.get("token_env", default_env)
        if token_env is None:
            raise ValueError(
                "key 'auth': type 'bearer' needs 'token_env', the environment variable that "
                "holds the token (the token itself never goes in this file)"
            )
        if not ENV_NAME.match(token_env):
            raise ValueError(f"key 'auth': 'token_env' must be a variable name, got {token_env!r}")
        return BearerAuth(token_env=token_env)
    client_id = raw.get("client_id", "").strip()
    if not client_id:
        raise ValueError(
            "key 'auth': type 'device-code' needs 'client_id', the client id of your own OAuth "
            "app (with the device flow enabled)"
        )
    if client_id in BORROWED_CLIENT_IDS:
        raise ValueError(
            f"key 'auth': 'client_id' {client_id!r} belongs to another product's app; register "
            "your own OAuth app: borrowing an editor's client id is impersonation, which "
            "GitHub's terms forbid"
        )
    urls = {}
    for key in ("device_authorization_url", "token_url"):
        value = raw.get(key) or (getattr(preset, key) if preset else None)
        if not value:
            raise ValueError(f"key 'auth': type 'device-code' needs {key!r}")
        # RFC 8628 requires TLS; plain http is only for a server on this machine.
        urls[key] = _check_url(f"auth.{key}", value, plain_http="loopback")
    return DeviceCodeAuth(
        client_id=client_id,
        device_authorization_url=urls["device_authorization_url"],
        token_url=urls["token_url"],
        scope=raw.get("scope", "").strip(),
    )


def _check_url(key: str, value: Any, *, plain_http: Literal["anywhere", "loopback"]) -> str:
    if not isinstance(value, str):
        raise ValueError(f"key {key!r} must be a string URL, got {value!r}")
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
    except ValueError as exc:
        raise ValueError(f"key {key!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"key {key!r} must be an http:// or https:// URL, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"key {key!r} must have no query or fragment, got {value!r}")
    if parts.username or parts.password:
        raise ValueError(f"key {key!r} must not hold credentials: use 'auth'")
    if parts.scheme == "http" and plain_http == "loopback" and not _is_loopback(host):
        raise ValueError(f"key {key!r} must be https:// (plain http only on this machine)")
    return value.strip().rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_headers(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping):
        raise ValueError("key 'headers' must be a table of header name = value")
    headers = []
    for name, value in raw.items():
        where = f"key 'headers': {name!r}"
        if not HEADER_NAME.match(name):
            raise ValueError(f"{where} is not a valid header name")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"{where} must be a one-line string")
        lowered = name.lower()
        if lowered == "authorization":
            raise ValueError(
                f"{where}: put the credential in an environment variable and use "
                'auth = { type = "bearer", token_env = "..." } (this file is not a secret store)'
            )
        if lowered in IMPERSONATING_HEADERS:
            raise ValueError(
                f"{where} impersonates a GitHub editor, which GitHub's terms forbid; "
                'use the documented GitHub Models API (preset = "github-models")'
            )
        headers.append((name, value))
    return tuple(headers)


def _check_models(raw: Any) -> tuple[str, ...]:
    models = tuple(raw)
    for model in models:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"key 'models' must hold model ids, got {model!r}")
    if len(set(models)) != len(models):
        raise ValueError("key 'models' names a model twice")
    return models
