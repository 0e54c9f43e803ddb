"""``copilot-cli-proxy doctor``: one screen that says what works and what does not.

It asks the real pieces the server uses, with the environment the server would give
the CLI: the settings (every bad value), ``resolve_cli`` and ``--version``, the login
(copilot: ``auth.getStatus`` over a short-lived ``copilot --headless --stdio``; claude:
``claude auth status``), model discovery through the backends, the temp and log dirs,
and the port. Exit code 1 when something the server needs fails.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
from loguru import logger

from copilot_cli_proxy import __version__
from copilot_cli_proxy.backends.base import ModelInfo
from copilot_cli_proxy.backends.claude_cli import ClaudeCliBackend
from copilot_cli_proxy.backends.cli_backend import CliBackend, cli_env
from copilot_cli_proxy.backends.copilot_cli import CopilotCliBackend
from copilot_cli_proxy.backends.copilot_headless import HeadlessCopilot, build_headless_argv
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.ops import checks
from copilot_cli_proxy.ops.checks import Check, Status
from copilot_cli_proxy.ops.config_check import read_settings
from copilot_cli_proxy.ops.login import configured_cli_path, tokens_set
from copilot_cli_proxy.runtime.jsonrpc import JsonRpcError, PeerClosed
from copilot_cli_proxy.runtime.process import CliRun, capture_cli
from copilot_cli_proxy.settings import DEFAULT_MODELS, SERVICES, Settings

CLI_STEP_TIMEOUT_S = 60.0  # copilot unpacks itself on its first run (~5 s); be generous


async def run_checks(env: Mapping[str, str], env_file: str = "") -> list[Check]:
    """All checks, in screen order; ``env`` is the merged settings environment."""
    report = read_settings(env)
    settings = report.settings
    found = checks.config_checks(settings, report.problems, env_file)
    # A check whose input was dropped as invalid would test a default nobody asked for.
    host_port_valid = not report.dropped & {"HOST", "PORT"}
    if "HOST" not in report.dropped:
        found.append(checks.network_check(settings))
    temp = checks.writable_dir_check("temp dir", settings.temp_base, "TEMP_DIR_BASE", needed=True)
    # The CLIs run where the server runs them, once that dir exists.
    workdir = settings.temp_base if settings.temp_base.is_dir() else Path(tempfile.gettempdir())
    per_service: dict[str, list[Check]] = {}

    async def one(service: str) -> None:
        per_service[service] = await cli_checks(service, settings, workdir)

    # The two CLIs are independent: check them side by side.
    async with anyio.create_task_group() as tg:
        for service in SERVICES:
            tg.start_soon(one, service)
    ordered = [settings.service] + [s for s in SERVICES if s != settings.service]
    for service in ordered:
        found += per_service[service]
    found.append(temp)
    found.append(
        checks.writable_dir_check("log dir", Path(settings.log_dir), "LOG_DIR", needed=False)
    )
    if host_port_valid:
        found.append(checks.port_check(settings.host, settings.port))
    return found


def backend_for(service: str, settings: Settings) -> CliBackend:
    # Discovery is the same for both runners; the one-shot backend starts nothing.
    if service == "copilot":
        return CopilotCliBackend(settings)
    return ClaudeCliBackend(settings)


async def cli_checks(service: str, settings: Settings, workdir: Path) -> list[Check]:
    needed = service == settings.service
    result = await _cli_checks(service, settings, workdir)
    return result if needed else [checks.demoted(c, settings.service) for c in result]


async def _cli_checks(service: str, settings: Settings, workdir: Path) -> list[Check]:
    backend = backend_for(service, settings)
    cli = backend.cli_path
    if cli is None:
        return [checks.not_found_check(service, configured_cli_path(settings, service))]
    env = cli_env(kind=f"{service}-cli", extra_names=settings.cli_env)
    try:
        code, stdout, stderr = await _capture([cli, "--version"], workdir, env)
    except ProxyError as exc:
        if exc.code == "cli_not_found":
            return [checks.not_found_check(service, configured_cli_path(settings, service))]
        return [checks.cli_broken_check(service, f"{cli}: {exc.message}")]
    except (TimeoutError, OSError) as exc:
        return [checks.cli_broken_check(service, f"{cli} --version: {_reason(exc)}")]
    found = [checks.version_check(service, cli, code, stdout, stderr)]
    if found[0].status is Status.FAIL:
        return found  # a CLI that cannot say its version will not log in or list models
    found.append(await login_check(service, cli, workdir, env))
    default = settings.model if service == settings.service else DEFAULT_MODELS[service]
    models, error = await discover_models(backend)
    found.append(checks.models_check(service, models, error, default))
    return found


async def login_check(service: str, cli: str, workdir: Path, env: dict[str, str]) -> Check:
    try:
        if service == "copilot":
            status = await copilot_auth_status(cli, workdir, env)
            return checks.copilot_login_check(status, tokens_set("copilot", env))
        code, stdout, stderr = await _capture([cli, "auth", "status"], workdir, env)
        return checks.claude_login_check(code, stdout, stderr)
    except (ProxyError, TimeoutError, OSError, JsonRpcError, PeerClosed) as exc:
        return Check(
            f"{service} login",
            Status.FAIL,
            f"could not ask the CLI: {_reason(exc)}",
            checks.login_hint(service),
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


async def discover_models(backend: CliBackend) -> tuple[list[ModelInfo] | None, str | None]:
    # Straight to the discovery, not the catalog: for serving, the catalog rightly hides
    # a failure behind the DEFAULT_MODEL fallback; the doctor must show it.
    try:
        with anyio.fail_after(CLI_STEP_TIMEOUT_S):
            return await backend._discover_models(), None
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


# -- the screen ---------------------------------------------------------------------------


def failed(found: list[Check]) -> bool:
    return any(c.status is Status.FAIL for c in found)


def render(found: list[Check]) -> str:
    width = max(len(c.name) for c in found)
    lines = [f"copilot-cli-proxy {__version__} doctor", ""]
    for check in found:
        lines.append(f"  {check.status.value:<4}  {check.name:<{width}}  {check.detail}")
        if check.hint and check.status is not Status.OK:
            lines.append(f"  {'':<4}  {'':<{width}}  → {check.hint}")
    fails = sum(c.status is Status.FAIL for c in found)
    warns = sum(c.status is Status.WARN for c in found)
    lines.append("")
    if fails:
        lines.append(
            f"{fails} problem{'s' if fails > 1 else ''} to fix before the server can answer "
            f"chat requests ({warns} warning{'s' if warns != 1 else ''})."
        )
    else:
        lines.append("Ready." + (f" {warns} warning{'s' if warns != 1 else ''}." if warns else ""))
    return "\n".join(lines)


def render_json(found: list[Check]) -> str:
    return json.dumps(
        {"ok": not failed(found), "checks": [c.as_dict() for c in found]}, ensure_ascii=False
    )


def doctor_command(env: Mapping[str, str], env_file: str, *, as_json: bool = False) -> int:
    # The checks call the backends, which log their own view of failures; here the
    # screen says it all.
    logger.disable("copilot_cli_proxy")
    try:
        found = anyio.run(run_checks, env, env_file)
    finally:
        logger.enable("copilot_cli_proxy")
    print(render_json(found) if as_json else render(found))
    return 1 if failed(found) else 0
