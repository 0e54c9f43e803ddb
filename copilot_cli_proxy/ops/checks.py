"""The doctor's checks. Each returns a ``Check``; the parts that read a CLI's answer are
pure functions of that answer, so they are tested without processes."""

from __future__ import annotations

import errno
import http.client
import json
import os
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from copilot_cli_proxy.backends.base import ModelInfo
from copilot_cli_proxy.settings import Settings, is_loopback_host

HTTP_PROBE_TIMEOUT_S = 2.0
MODELS_SHOWN = 3


class Status(Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "status": self.status.value.lower(),
            "detail": self.detail,
            "hint": self.hint,
        }


# Besides the login command: the token variable that replaces a login, per CLI.
TOKEN_HINTS = {
    "copilot": "COPILOT_GITHUB_TOKEN=github_pat_… in .env",
    "claude": "CLAUDE_CODE_OAUTH_TOKEN (claude setup-token) in .env",
}


def login_hint(executable: str, command: str = "") -> str:
    """The exact command that logs the backend in (by default the one named after its
    CLI, as a server without a backends file calls it), or the token variable."""
    command = command or f"copilot-cli-proxy login {executable}"
    token = TOKEN_HINTS.get(executable)
    return f"{command}, or {token}" if token else command


# -- configuration ------------------------------------------------------------------------


def config_checks(settings: Settings, problems: Sequence[str], env_file: str) -> list[Check]:
    if problems:
        where = f"the environment or {env_file}" if env_file else "the environment or .env"
        hint = f"fix it in {where}; the checks below use its default meanwhile"
        return [Check("config", Status.FAIL, problem, hint) for problem in problems]
    source = f".env: {env_file}" if env_file else "no .env file"
    # The backends file replaces SERVICE and RUNNER: naming them would mislead.
    backends = (
        f"BACKENDS_FILE={settings.backends_file}"
        if settings.backends_file
        else f"SERVICE={settings.service} RUNNER={settings.runner}"
    )
    detail = f"{backends} HOST={settings.host} PORT={settings.port} ({source})"
    return [Check("config", Status.OK, detail)]


def network_check(settings: Settings) -> Check:
    # getattr: API keys are a setting of newer servers; without them only loopback is safe.
    keys: Sequence[str] = getattr(settings, "api_key", ()) or ()
    if is_loopback_host(settings.host):
        return Check("network", Status.OK, f"HOST={settings.host}: only this machine can connect")
    if keys:
        return Check(
            "network",
            Status.OK,
            f"HOST={settings.host}, clients must send one of {len(keys)} API key(s)",
        )
    return Check(
        "network",
        Status.WARN,
        f"HOST={settings.host} is reachable from the network and no API key is required: "
        "anyone who reaches it uses this machine's CLI login",
        "set API_KEY, or keep HOST=127.0.0.1 (a reverse proxy with auth in front)",
    )


# -- the CLIs -----------------------------------------------------------------------------


# The checks of one backend are named after its id; without a backends file that is
# the CLI's name ("copilot CLI", "claude login"). ``executable`` says which CLI it runs.


def version_check(
    backend_id: str, cli: str, code: int, stdout: str, stderr: str, executable: str = ""
) -> Check:
    name = f"{backend_id} CLI"
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if code == 0 and lines:
        return Check(name, Status.OK, f"{lines[0].rstrip('.')} at {cli}")
    why = _first_line(stderr) or _first_line(stdout) or "no output"
    detail = f"{cli} --version failed (exit code {code}): {why}"
    return cli_broken_check(backend_id, detail, executable)


def cli_broken_check(backend_id: str, detail: str, executable: str = "") -> Check:
    # The npm copilot is a Node.js loader; claude is a native binary.
    need = "Node.js 20+ on PATH, then " if (executable or backend_id) == "copilot" else ""
    return Check(
        f"{backend_id} CLI", Status.FAIL, detail, f"{need}reinstall: scripts/setup.sh --with-clis"
    )


def copilot_login_check(
    status: Any, tokens: Sequence[str], backend_id: str = "copilot", command: str = ""
) -> Check:
    """From the headless server's ``auth.getStatus`` result."""
    name = f"{backend_id} login"
    if not isinstance(status, dict) or not isinstance(status.get("isAuthenticated"), bool):
        return Check(name, Status.FAIL, f"auth.getStatus gave no answer: {status!r}")
    message = str(status.get("statusMessage") or "")
    if status["isAuthenticated"]:
        detail = message or "logged in"
        extra = [str(status[k]) for k in ("login", "host") if status.get(k)]
        extra = [item for item in extra if item not in detail]
        return Check(name, Status.OK, detail + (f" ({', '.join(extra)})" if extra else ""))
    detail = f"not logged in (auth.getStatus: {message or 'isAuthenticated false'})"
    if tokens:
        detail += (
            f"; {', '.join(tokens)} is set but the CLI does not accept it "
            "(no network, or a token without Copilot access)"
        )
    return Check(name, Status.FAIL, detail, login_hint("copilot", command))


def claude_login_check(
    code: int, stdout: str, stderr: str, backend_id: str = "claude", command: str = ""
) -> Check:
    """From ``claude auth status`` (JSON; exit code 1 when logged out)."""
    name = f"{backend_id} login"
    try:
        status = json.loads(stdout)
    except ValueError:
        status = None
    if not isinstance(status, dict) or not isinstance(status.get("loggedIn"), bool):
        why = _first_line(stderr) or _first_line(stdout) or "no output"
        return Check(
            name, Status.FAIL, f"`claude auth status` exited {code} without a status: {why}"
        )
    if status["loggedIn"]:
        how = [f"{k}: {status[k]}" for k in ("authMethod", "apiKeySource") if status.get(k)]
        return Check(name, Status.OK, "logged in" + (f" ({', '.join(how)})" if how else ""))
    return Check(
        name,
        Status.FAIL,
        "not logged in (claude auth status: loggedIn false)",
        login_hint("claude", command),
    )


def models_check(
    backend_id: str, models: Sequence[ModelInfo] | None, error: str | None, default: str
) -> Check:
    name = f"{backend_id} models"
    if models is None or not models:
        return Check(
            name,
            Status.WARN,
            f"discovery failed: {error or 'no models listed'}; the server offers only {default!r}",
        )
    ids = [m.id for m in models]
    known = set(ids) | {alias for m in models for alias in m.aliases}
    shown = ", ".join(ids[:MODELS_SHOWN]) + (", …" if len(ids) > MODELS_SHOWN else "")
    if default not in known:
        return Check(
            name,
            Status.WARN,
            f"{len(ids)} models ({shown}), but not the default model {default!r}",
            "set DEFAULT_MODEL to one of them (GET /v1/models lists all)",
        )
    return Check(name, Status.OK, f"{len(ids)} models, default {default} among them: {shown}")


def not_found_check(
    backend_id: str, configured: str, executable: str = "", source: str = ""
) -> Check:
    """``source``: the backends file entry that sets the path (default: the
    ``<CLI>_CLI_PATH`` variable)."""
    executable = executable or backend_id
    variable = f"{executable.upper()}_CLI_PATH"
    if configured and source:
        detail = f"{configured}: no such executable (cli_path of {source})"
    elif configured:
        detail = f"{variable}={configured}: no such executable"
    else:
        detail = f"`{executable}` is not on PATH nor in ./node_modules/.bin"
    where = f"cli_path of {source}" if source else variable
    return Check(
        f"{backend_id} CLI",
        Status.FAIL,
        detail,
        f"scripts/setup.sh --with-clis, or set {where}",
    )


def demoted(check: Check, service: str) -> Check:
    """A CLI the configured SERVICE does not use: its problems are only warnings."""
    status = Status.WARN if check.status is Status.FAIL else check.status
    return Check(check.name, status, f"{check.detail} (not used: SERVICE={service})", check.hint)


# -- this machine -------------------------------------------------------------------------


def writable_dir_check(name: str, path: Path, variable: str, *, needed: bool) -> Check:
    """Writable, or creatable (the server makes it); this check creates nothing."""
    try:
        if path.is_dir():
            handle, probe = tempfile.mkstemp(prefix=".doctor-", dir=path)
            os.close(handle)
            os.unlink(probe)
            return Check(name, Status.OK, f"{path.absolute()} is writable")
        parent = next(p for p in path.absolute().parents if p.exists())
        if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return Check(name, Status.OK, f"{path.absolute()} will be created")
        reason = f"cannot be created in {parent}"
    except OSError as exc:
        reason = f"is not writable: {exc.strerror or exc}"
    return Check(
        name,
        Status.FAIL if needed else Status.WARN,
        f"{path.absolute()} {reason}",
        f"set {variable} to a writable place, or fix the permissions",
    )


def port_check(host: str, port: int) -> Check:
    name = "port"
    if port == 0:
        return Check(name, Status.OK, "PORT=0: the server takes any free port")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            # As uvicorn does: a closed server's TIME_WAIT connections do not block the port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except socket.gaierror as exc:
        return Check(name, Status.FAIL, f"HOST={host} does not resolve: {exc.strerror}")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _port_in_use(host, port)
        if exc.errno == errno.EADDRNOTAVAIL:
            return Check(
                name, Status.FAIL, f"HOST={host} is not an address of this machine", "fix HOST"
            )
        return Check(name, Status.FAIL, f"cannot listen on {host}:{port}: {exc.strerror}")
    return Check(name, Status.OK, f"{host}:{port} is free")


def _port_in_use(host: str, port: int) -> Check:
    running = running_proxy(host, port)
    if running:
        return Check(
            "port",
            Status.OK,
            f"{host}:{port} is taken by a running copilot-cli-proxy ({running})",
            "scripts/daemon.sh status; stop it before starting another on this port",
        )
    return Check(
        "port",
        Status.FAIL,
        f"{host}:{port} is taken by another program",
        "choose another PORT, or stop that program",
    )


def running_proxy(host: str, port: int) -> str | None:
    """A short description of the copilot-cli-proxy answering on ``host:port``, if one is."""
    # A server bound to every interface answers on loopback.
    wildcard = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104
    target = wildcard.get(host, host)
    connection = http.client.HTTPConnection(target, port, timeout=HTTP_PROBE_TIMEOUT_S)
    try:
        connection.request("GET", "/health")
        body = json.loads(connection.getresponse().read())
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    if not isinstance(body, dict) or "backend" not in body or "version" not in body:
        return None
    return f"{body['version']}, backend {body['backend']}, status {body.get('status')}"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
