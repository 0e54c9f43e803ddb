"""``copilot-cli-proxy login copilot|claude|<backend-id>``: the CLI's own login, as the
server will see it.

The server runs the CLI with its own environment (``cli_env``: HOME, COPILOT_HOME,
CLAUDE_CONFIG_DIR, tokens from .env; for a backend of BACKENDS_FILE also the variables
its ``env`` names). Logging in through the same resolved CLI path and the same
environment puts the credentials exactly where the server's CLI looks.
The login is interactive (device code / browser URL), so it runs attached to the
terminal, in our process group, and its exit code is ours.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from copilot_cli_proxy.backends.cli_backend import (
    LOGIN_SUBCOMMANDS,
    NPM_PACKAGES,
    CliBackend,
    cli_env,
    resolve_cli,
)
from copilot_cli_proxy.settings import Settings

# In order of precedence (`copilot help environment`); each beats a stored login.
COPILOT_TOKEN_VARS = ("COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN")
# `claude setup-token` ends with "Use this token by setting: export CLAUDE_CODE_OAUTH_TOKEN=…";
# `claude auth status` reports either variable as the login in use.
CLAUDE_TOKEN_VARS = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY")
TOKEN_VARS = {"copilot": COPILOT_TOKEN_VARS, "claude": CLAUDE_TOKEN_VARS}


def configured_cli_path(settings: Settings, service: str) -> str:
    return settings.copilot_cli_path if service == "copilot" else settings.claude_cli_path


def build_login_argv(service: str, cli: str, extra: Sequence[str] = ()) -> list[str]:
    """``copilot login`` / ``claude auth login``, with the operator's extra flags after it."""
    if service not in LOGIN_SUBCOMMANDS:
        raise ValueError(f"unknown service {service!r}")
    return [cli, *LOGIN_SUBCOMMANDS[service], *extra]


def config_dir(service: str, env: Mapping[str, str]) -> Path:
    """Where the CLI keeps its login for this environment (its documented defaults)."""
    home = Path(env.get("HOME") or "~").expanduser()
    if service == "copilot":
        return Path(env["COPILOT_HOME"]) if env.get("COPILOT_HOME") else home / ".copilot"
    return Path(env["CLAUDE_CONFIG_DIR"]) if env.get("CLAUDE_CONFIG_DIR") else home / ".claude"


def tokens_set(service: str, env: Mapping[str, str]) -> list[str]:
    """Names (never values) of the token variables set in the environment."""
    return [name for name in TOKEN_VARS[service] if env.get(name, "").strip()]


def login_preamble(
    service: str, argv: Sequence[str], env: Mapping[str, str], backend_id: str = ""
) -> str:
    home = env.get("HOME") or "(HOME is not set)"
    where = config_dir(service, env)
    whose = f" of backend {backend_id!r}" if backend_id and backend_id != service else ""
    lines = [
        f"Logging the {service} CLI{whose} in for copilot-cli-proxy.",
        f"  runs:       {' '.join(argv)}",
        f"  HOME:       {home}",
    ]
    if service == "copilot":
        lines += [
            f"  config dir: {where}  (COPILOT_HOME; the token goes to the system keyring if",
            "              there is one, else to a file here)",
        ]
    else:
        lines += [f"  config dir: {where}  (CLAUDE_CONFIG_DIR; credentials in .credentials.json)"]
    lines += [
        "The server uses this login when it runs as this user with this environment",
        "(scripts/serve.sh, scripts/daemon.sh and supervisord.conf keep it; .env is read too).",
        "",
    ]
    for name in tokens_set(service, env):
        lines.append(f"Note: {name} is set; the {service} CLI uses it ahead of a stored login.")
    lines += [*_headless_help(service, f"copilot-cli-proxy login {backend_id or service}"), ""]
    return "\n".join(lines)


def _headless_help(service: str, command: str) -> list[str]:
    if service == "copilot":
        return [
            "No browser on this machine? The device code flow works anywhere: open the URL it",
            f"prints on any device. To force it: {command} -- --device-code",
            "Or skip the login: put a fine-grained personal access token with the",
            '"Copilot Requests" permission in .env (classic ghp_ tokens are not supported):',
            "    COPILOT_GITHUB_TOKEN=github_pat_...   (also read: GH_TOKEN, GITHUB_TOKEN)",
            "or store one without a browser:",
            f"    {command} -- --with-token < token.txt",
            "GitHub Enterprise Cloud: add -- --host https://example.ghe.com (or set GH_HOST /",
            "COPILOT_GH_HOST).",
        ]
    return [
        "No browser on this machine? claude prints a URL: open it on any device and paste the",
        "code back here. Or skip the login: `claude setup-token` (needs a Claude subscription)",
        "prints a long-lived token; put it in .env:",
        "    CLAUDE_CODE_OAUTH_TOKEN=...",
        "or use an Anthropic Console API key instead: ANTHROPIC_API_KEY=sk-ant-...",
    ]


def exit_status(returncode: int) -> int:
    """A child killed by signal N (returncode -N) exits like a shell would: 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def run_login(
    service: str,
    settings: Settings,
    extra: Sequence[str] = (),
    *,
    env: Mapping[str, str],
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout  # looked up now: a captured stdout may have been replaced
    cli = resolve_cli(configured_cli_path(settings, service), service)
    if cli is None:
        print(
            f"copilot-cli-proxy: the {service} CLI was not found. Install it with "
            f"scripts/setup.sh --with-clis (or `npm install {NPM_PACKAGES[service]}`), "
            f"or set {service.upper()}_CLI_PATH.",
            file=sys.stderr,
        )
        return 1
    argv = build_login_argv(service, cli, extra)
    return run_attached(service, argv, env, out)


def run_backend_login(
    backend: CliBackend, extra: Sequence[str] = (), out: TextIO | None = None
) -> int:
    """``login <backend-id>`` of a CLI backend: its CLI path, its environment allowlist."""
    out = out or sys.stdout
    if backend.cli_path is None:
        print(
            f"copilot-cli-proxy: backend {backend.id!r}: the {backend.executable} CLI was "
            f"not found. Install it with scripts/setup.sh --with-clis (or `npm install "
            f"{NPM_PACKAGES[backend.executable]}`), or set its cli_path in BACKENDS_FILE.",
            file=sys.stderr,
        )
        return 1
    argv = backend.login_argv(extra)
    return run_attached(backend.executable, argv, backend.child_env(), out, backend.id)


def run_attached(
    service: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    out: TextIO,
    backend_id: str = "",
) -> int:
    """Run the login attached to the terminal; its exit code is ours."""
    print(login_preamble(service, argv, env, backend_id), file=out, flush=True)
    process = subprocess.Popen(list(argv), env=dict(env))
    # Ctrl-C belongs to the CLI (it shares our terminal and gets it too): we wait for its
    # exit code instead of dying first. Set after the spawn, so the CLI keeps the default.
    # A TERM for us (e.g. `timeout`) is passed on: the CLI must not outlive its wrapper.
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(
        signal.SIGTERM, lambda signum, _frame: process.send_signal(signum)
    )
    try:
        code = exit_status(process.wait())
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
    if code == 0:
        print(
            "\nDone. `copilot-cli-proxy doctor` shows what the server sees; restart a running "
            "server (scripts/daemon.sh restart) so long-lived CLI processes pick the login up.",
            file=out,
        )
    return code


def login_environment(
    base: Mapping[str, str] | None = None, service: str | None = None
) -> dict[str, str]:
    """What the server gives its CLI (``cli_env``), so the login lands where it looks."""
    kind = f"{service}-cli" if service else None
    return cli_env(os.environ if base is None else base, kind=kind)
