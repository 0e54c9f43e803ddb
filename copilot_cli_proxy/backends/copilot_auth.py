"""How copilot gets its login, and what the server tells an operator when it has none.

Three sources, in the CLI's own order: a custom model provider (BYOK, the
``COPILOT_PROVIDER_*`` variables: no GitHub login needed at all), a token variable
(``COPILOT_GITHUB_TOKEN``, ``GH_TOKEN``, ``GITHUB_TOKEN``), then the login stored by
``copilot login`` (or the GitHub CLI's). A classic personal access token (``ghp_``)
is never accepted: the one-shot CLI says so, the headless one only says it has no
token, so both runners give the same answer from what the environment shows.

``copilot --headless`` ignores the ``COPILOT_PROVIDER_*`` variables: there BYOK is set
per session (``session.create`` ``provider``), built here from the same variables, so
both runners honour one configuration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from copilot_cli_proxy.errors import ProxyError

# In order of precedence (`copilot help environment`); each beats a stored login.
TOKEN_VARS = ("COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN")
CLASSIC_PAT_PREFIX = "ghp_"
LOGIN_COMMAND = "copilot-cli-proxy login copilot"
LOGIN_HINT = (
    "The copilot CLI on the server is not logged in. The operator must log it in once: "
    f"run `{LOGIN_COMMAND}` (or `copilot login`) as the user that runs the "
    "server, or set COPILOT_GITHUB_TOKEN (or GH_TOKEN) in the server's environment to a "
    "token with Copilot access."
)
AUTH_ERROR_MARKERS = (
    "No authentication information found",
    "No GitHub OAuth token",
    "Not authenticated",
    # one-shot, with a classic PAT in a token variable
    "Classic Personal Access Tokens (ghp_) are not supported",
)

# COPILOT_PROVIDER_<suffix> -> the session.create ``provider`` field (github-copilot-sdk's
# wire names); the integers are parsed, the headers split into a mapping.
_PROVIDER_TEXT_FIELDS = {
    "TYPE": "type",
    "BASE_URL": "baseUrl",
    "API_KEY": "apiKey",
    "API_KEY_COMMAND": "apiKeyCommand",
    "BEARER_TOKEN": "bearerToken",
    "WIRE_API": "wireApi",
    "TRANSPORT": "transport",
    "MODEL_ID": "modelId",
    "WIRE_MODEL": "wireModel",
}
_PROVIDER_INT_FIELDS = {
    "MAX_PROMPT_TOKENS": "maxPromptTokens",
    "MAX_OUTPUT_TOKENS": "maxOutputTokens",
}


def byok_enabled(env: Mapping[str, str]) -> bool:
    """The CLI uses a custom provider: `COPILOT_PROVIDER_BASE_URL` activates BYOK."""
    return bool(env.get("COPILOT_PROVIDER_BASE_URL", "").strip())


def parse_provider_headers(text: str) -> dict[str, str]:
    """``COPILOT_PROVIDER_HEADERS``: "Name: Value" pairs, one a line (a literal ``\\n``
    separates them too)."""
    headers: dict[str, str] = {}
    for line in text.replace("\\n", "\n").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers[name.strip()] = value.strip()
    return headers


def provider_from_env(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The per-session ``provider`` for ``session.create`` from the one-shot CLI's
    BYOK variables; None when BYOK is off."""
    if not byok_enabled(env):
        return None

    def value(suffix: str) -> str:
        return env.get(f"COPILOT_PROVIDER_{suffix}", "").strip()

    provider: dict[str, Any] = {"type": value("TYPE") or "openai"}
    for suffix, field in _PROVIDER_TEXT_FIELDS.items():
        if value(suffix) and field != "type":
            provider[field] = value(suffix)
    for suffix, field in _PROVIDER_INT_FIELDS.items():
        if value(suffix).isdigit():
            provider[field] = int(value(suffix))
    headers = parse_provider_headers(env.get("COPILOT_PROVIDER_HEADERS", ""))
    if headers:
        provider["headers"] = headers
    if value("AZURE_API_VERSION"):
        provider["azure"] = {"apiVersion": value("AZURE_API_VERSION")}
    return provider


def byok_model(env: Mapping[str, str]) -> str | None:
    """The model a BYOK operator named (``COPILOT_MODEL``, else the provider model id)."""
    if not byok_enabled(env):
        return None
    for name in ("COPILOT_MODEL", "COPILOT_PROVIDER_MODEL_ID"):
        if env.get(name, "").strip():
            return env[name].strip()
    return None


def token_variable(env: Mapping[str, str]) -> str | None:
    """The token variable the CLI uses (the first set one), if any."""
    return next((name for name in TOKEN_VARS if env.get(name, "").strip()), None)


def classic_pat_variable(env: Mapping[str, str]) -> str | None:
    """The variable holding a classic PAT, when that is the token the CLI would use."""
    name = token_variable(env)
    if name and env[name].strip().startswith(CLASSIC_PAT_PREFIX):
        return name
    return None


def login_problem(env: Mapping[str, str]) -> str:
    """Why copilot is not logged in, and what the operator runs to fix it."""
    classic = classic_pat_variable(env)
    if classic:
        return (
            f"{classic} holds a classic personal access token (ghp_), which Copilot does not "
            "accept. Replace it with a fine-grained token that has the Copilot Requests "
            f"permission, or unset it and run `{LOGIN_COMMAND}`."
        )
    return LOGIN_HINT


def not_logged_in(env: Mapping[str, str]) -> ProxyError:
    return ProxyError("cli_not_logged_in", login_problem(env))


def is_auth_failure(text: str) -> bool:
    return any(marker in text for marker in AUTH_ERROR_MARKERS)


def _read_json_with_comments(path: Path) -> Any:
    """copilot's config.json starts with ``//`` comment lines."""
    text = path.read_text("utf-8")
    return json.loads("\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//")))


def stored_login_state(env: Mapping[str, str], copilot_home: Path) -> bool | None:
    """A cheap guess from the environment and the files, no CLI run.

    True: BYOK, a (non-classic) token variable, or a login ``copilot login`` stored
    (config.json lists logged-in users; the token itself may be in the system
    keyring). False: a classic PAT, or no source at all. None: cannot tell.
    """
    if byok_enabled(env):
        return True
    if token_variable(env):
        return classic_pat_variable(env) is None
    try:
        config = _read_json_with_comments(copilot_home / "config.json")
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError):
        return None
    if isinstance(config, dict) and config.get("loggedInUsers"):
        return True
    gh_config = Path(env.get("GH_CONFIG_DIR") or Path(env.get("HOME") or "~") / ".config" / "gh")
    if (gh_config.expanduser() / "hosts.yml").is_file():
        return None  # the GitHub CLI's login may serve; only a real run can tell
    return False
