"""The doctor's checks of one backend, through the backend's public hooks only.

Every backend gets a header (id, kind, runner), a login line with the exact command
that logs it in, and a models line (``discover_models()``: straight to the discovery,
past the catalog that hides a failure behind DEFAULT_MODEL when serving). A CLI
backend also gets its CLI line (path and ``--version``), and its login is asked the
way its kind answers it: copilot's ``auth.getStatus`` over a short-lived headless
server, ``claude auth status``. A backend without a CLI reports its login in
``health()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from copilot_cli_proxy.backends.base import Backend, ModelInfo
from copilot_cli_proxy.backends.cli_backend import CliBackend
from copilot_cli_proxy.backends.copilot_headless import HeadlessCopilot, build_headless_argv
from copilot_cli_proxy.config.backends_file import BackendSpec
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.ops import checks
from copilot_cli_proxy.ops.checks import Check, Status
from copilot_cli_proxy.ops.login import tokens_set
from copilot_cli_proxy.runtime.jsonrpc import JsonRpcError, PeerClosed
from copilot_cli_proxy.runtime.process import CliRun, capture_cli

CLI_STEP_TIMEOUT_S = 60.0  # copilot unpacks itself on its first run (~5 s); be generous


@dataclass(frozen=True, slots=True)
class Planned:
    """A backend to check. ``not_used_by``: for the CLI a single-backend server does not
    run, the SERVICE it runs instead: its problems are only warnings."""

    spec: BackendSpec
    backend: Backend
    not_used_by: str = ""
    configured_path: str = ""  # what the operator set, for "not found" messages
    path_source: str = ""  # where that is set: COPILOT_CLI_PATH, or the file's cli_path


@dataclass(frozen=True, slots=True)
class BackendResult:
    checks: list[Check]
    summary: dict[str, Any]  # for ``doctor --json``: the facts, one object per backend


async def check_backend(plan: Planned, workdir: Path, *, header: bool) -> BackendResult:
    summary: dict[str, Any] = {"id": plan.spec.id, "kind": plan.spec.kind}
    found: list[Check] = []
    try:
        status = plan.backend.health().as_json()
        status["runner"] = plan.backend.runner
        summary["runner"] = plan.backend.runner
        summary["login_command"] = plan.backend.login_command()
        if header:
            found.append(header_check(plan.spec, status))
        if isinstance(plan.backend, CliBackend):
            found += await _cli_checks(plan, plan.backend, workdir, summary)
        else:
            found += await _service_checks(plan, status, summary)
    finally:
        await plan.backend.stop()
    if plan.not_used_by:
        found = [checks.demoted(c, plan.not_used_by) for c in found]
    return BackendResult(found, summary)


def header_check(spec: BackendSpec, status: Mapping[str, Any]) -> Check:
    parts = [f"kind {spec.kind}"]
    if status.get("runner"):
        parts.append(f"runner {status['runner']}")
    if status.get("base_url"):
        parts.append(f"base_url {status['base_url']}")
    return Check(f"{spec.id} backend", Status.OK, ", ".join(parts))


async def _cli_checks(
    plan: Planned, backend: CliBackend, workdir: Path, summary: dict[str, Any]
) -> list[Check]:
    name = plan.spec.id
    cli = backend.cli_path
    summary.update(cli_path=cli, version=None, logged_in=None, models=None, models_error=None)
    not_found = checks.not_found_check(
        name, plan.configured_path, backend.executable, plan.path_source
    )
    if cli is None:
        return [not_found]
    env = backend.child_env()
    try:
        code, stdout, stderr = await _capture([cli, "--version"], workdir, env)
    except ProxyError as exc:
        if exc.code == "cli_not_found":
            return [not_found]
        return [checks.cli_broken_check(name, f"{cli}: {exc.message}", backend.executable)]
    except (TimeoutError, OSError) as exc:
        detail = f"{cli} --version: {_reason(exc)}"
        return [checks.cli_broken_check(name, detail, backend.executable)]
    found = [checks.version_check(name, cli, code, stdout, stderr, backend.executable)]
    if found[0].status is Status.FAIL:
        return found  # a CLI that cannot say its version will not log in or list models
    summary["version"] = _first_line(stdout)
    login = await login_check(backend, cli, workdir, env)
    summary["logged_in"] = (
        True if login.status is Status.OK else False if "not logged in" in login.detail else None
    )
    found.append(login)
    found.append(await _models_check(plan, summary))
    return found


async def _service_checks(
    plan: Planned, status: Mapping[str, Any], summary: dict[str, Any]
) -> list[Check]:
    """A backend with no CLI (an HTTP upstream): its login as its health() knows it."""
    logged_in = status.get("logged_in")
    summary.update(logged_in=logged_in, models=None, models_error=None)
    problems = [p for p in status.get("problems") or () if isinstance(p, str)]
    name = f"{plan.spec.id} login"
    command = plan.backend.login_command()
    if logged_in is False:
        why = "; ".join(problems) or "no credential"
        login = Check(name, Status.FAIL, f"not logged in ({why})", command)
    elif logged_in is None:
        login = Check(name, Status.OK, f"no login needed (auth {status.get('auth', 'none')})")
    else:
        login = Check(name, Status.OK, f"credential present (auth {status.get('auth')})")
    return [login, await _models_check(plan, summary)]


async def _models_check(plan: Planned, summary: dict[str, Any]) -> Check:
    models, error = await discover_models(plan.backend)
    summary["models"] = None if models is None else [m.id for m in models]
    summary["models_error"] = error
    return checks.models_check(plan.spec.id, models, error, plan.backend.default_model)


# -- the login, as each CLI kind answers it --------------------------------------------------

LoginProbe = Callable[[CliBackend, str, Path, dict[str, str]], Awaitable[Check]]


async def _copilot_login(
    backend: CliBackend, cli: str, workdir: Path, env: dict[str, str]
) -> Check:
    status = await copilot_auth_status(cli, workdir, env)
    return checks.copilot_login_check(
        status, tokens_set("copilot", env), backend.id, backend.login_command()
    )


async def _claude_login(backend: CliBackend, cli: str, workdir: Path, env: dict[str, str]) -> Check:
    code, stdout, stderr = await _capture([cli, "auth", "status"], workdir, env)
    return checks.claude_login_check(code, stdout, stderr, backend.id, backend.login_command())


LOGIN_PROBES: dict[str, LoginProbe] = {"copilot-cli": _copilot_login, "claude-cli": _claude_login}


async def login_check(backend: CliBackend, cli: str, workdir: Path, env: dict[str, str]) -> Check:
    probe = LOGIN_PROBES.get(backend.kind)
    name = f"{backend.id} login"
    if probe is None:
        return Check(name, Status.WARN, f"the doctor cannot ask a {backend.kind} CLI its login")
    try:
        return await probe(backend, cli, workdir, env)
    except (ProxyError, TimeoutError, OSError, JsonRpcError, PeerClosed) as exc:
        return Check(
            name,
            Status.FAIL,
            f"could not ask the CLI: {_reason(exc)}",
            checks.login_hint(backend.executable, backend.login_command()),
        )


async def copilot_auth_status(cli: str, workdir: Path, env: dict[str, str]) -> Any:
    """``auth.getStatus`` from a short-lived headless copilot (the server's own argv)."""
    argv = build_headless_argv(cli)
    run = await CliRun.start(argv, cwd=workdir, env=env, keep_stdin=True)
    process = HeadlessCopilot(run, argv, ())
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(process.serve, tg)
            try:
                with anyio.fail_after(CLI_STEP_TIMEOUT_S):
                    await process.connect()
                    return await process.peer.request("auth.getStatus", {})
            finally:
                await process.stop()
    except BaseExceptionGroup as group:  # the task group wraps what connect() raised
        raise group.exceptions[0] from None
    finally:
        await run.aclose()


async def discover_models(
    backend: Backend,
) -> tuple[list[ModelInfo] | None, str | None]:
    try:
        with anyio.fail_after(CLI_STEP_TIMEOUT_S):
            return await backend.discover_models(), None
    except Exception as exc:
        return None, _reason(exc)


async def _capture(argv: list[str], workdir: Path, env: dict[str, str]) -> tuple[int, str, str]:
    return await capture_cli(argv, cwd=workdir, env=env, limit_s=CLI_STEP_TIMEOUT_S)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ProxyError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return f"no answer within {CLI_STEP_TIMEOUT_S:g} s"
    return str(exc) or type(exc).__name__


def _first_line(text: str) -> str | None:
    return next((line.strip() for line in text.splitlines() if line.strip()), None)
