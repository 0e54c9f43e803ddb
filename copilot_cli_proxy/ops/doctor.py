"""``copilot-cli-proxy doctor``: one screen that says what works and what does not.

It asks the real pieces the server uses, with the environment the server would give
each CLI: the settings (every bad value), then every backend the server would run
(``BACKENDS_FILE``'s, or the one that SERVICE, RUNNER, … describe, plus the other CLI
as a warning-only extra), each through its public hooks (``ops/backend_checks.py``),
the temp and log dirs, and the port. Exit code 1 when something the server needs fails.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
from loguru import logger

from copilot_cli_proxy import __version__
from copilot_cli_proxy.config.backends_file import (
    BackendsFileError,
    GatewayConfig,
    load_backends_file,
)
from copilot_cli_proxy.config.registry import KINDS
from copilot_cli_proxy.gateway.gateway import config_from_settings
from copilot_cli_proxy.ops import checks
from copilot_cli_proxy.ops.backend_checks import BackendResult, Planned, check_backend
from copilot_cli_proxy.ops.checks import Check, Status
from copilot_cli_proxy.ops.config_check import read_settings
from copilot_cli_proxy.settings import SERVICES, Settings


async def run_checks(env: Mapping[str, str], env_file: str = "") -> list[Check]:
    """All checks, in screen order; ``env`` is the merged settings environment."""
    found, _ = await run_doctor(env, env_file)
    return found


async def run_doctor(
    env: Mapping[str, str], env_file: str = ""
) -> tuple[list[Check], list[dict[str, Any]]]:
    """The checks in screen order, and one summary per backend (for ``--json``)."""
    report = read_settings(env)
    settings = report.settings
    found = checks.config_checks(settings, report.problems, env_file)
    plans: list[Planned] = []
    if settings.backends_file:
        try:
            config = load_backends_file(settings.backends_file)
        except BackendsFileError as exc:
            found.append(
                Check("backends", Status.FAIL, str(exc), "fix the file; the server will not start")
            )
        else:
            found.append(backends_file_check(config))
            plans = file_plans(config, settings)
    else:
        plans = single_plans(settings)
    # A check whose input was dropped as invalid would test a default nobody asked for.
    host_port_valid = not report.dropped & {"HOST", "PORT"}
    if "HOST" not in report.dropped:
        found.append(checks.network_check(settings))
    temp = checks.writable_dir_check("temp dir", settings.temp_base, "TEMP_DIR_BASE", needed=True)
    # The CLIs run where the server runs them, once that dir exists.
    workdir = settings.temp_base if settings.temp_base.is_dir() else Path(tempfile.gettempdir())
    results = await check_all(plans, workdir, header=bool(settings.backends_file))
    for result in results:
        found += result.checks
    found.append(temp)
    found.append(
        checks.writable_dir_check("log dir", Path(settings.log_dir), "LOG_DIR", needed=False)
    )
    if host_port_valid:
        found.append(checks.port_check(settings.host, settings.port))
    return found, [result.summary for result in results]


def backends_file_check(config: GatewayConfig) -> Check:
    ids = ", ".join(spec.id for spec in config.backends)
    count = len(config.backends)
    aliases = f", {len(config.aliases)} alias(es)" if config.aliases else ""
    detail = f"{config.source}: {count} backend{'s' if count > 1 else ''} ({ids}){aliases}"
    return Check("backends", Status.OK, detail)


def file_plans(config: GatewayConfig, settings: Settings) -> list[Planned]:
    """Every backend of the file, built as the server builds it (nothing starts)."""
    return [
        Planned(
            spec,
            KINDS[spec.kind].load()(spec, settings),
            configured_path=str(spec.options.get("cli_path", "")),
            path_source=f"backend {spec.id!r} in {config.source}",
        )
        for spec in config.backends
    ]


def single_plans(settings: Settings) -> list[Planned]:
    """No file: the backend today's variables describe, then the other CLI, checked too
    (switching SERVICE is a common next step) but only ever as a warning."""
    plans = []
    for service in [settings.service] + [s for s in SERVICES if s != settings.service]:
        used = service == settings.service
        # The server's DEFAULT_MODEL names a model of the CLI it uses, not of the other.
        own = settings if used else replace(settings, service=service, default_model="")
        spec = config_from_settings(own).backends[0]
        backend = KINDS[spec.kind].load()(spec, own)
        configured = str(spec.options.get("cli_path", ""))  # its <CLI>_CLI_PATH
        plans.append(
            Planned(spec, backend, "" if used else settings.service, configured_path=configured)
        )
    return plans


async def check_all(plans: list[Planned], workdir: Path, *, header: bool) -> list[BackendResult]:
    """Different CLIs side by side; the backends of one CLI one after another: parallel
    claude processes sharing one ~/.claude.json can corrupt it."""
    results: dict[int, BackendResult] = {}

    async def one_kind(kind: str) -> None:
        for index, plan in enumerate(plans):
            if plan.spec.kind == kind:
                results[index] = await check_backend(plan, workdir, header=header)

    async with anyio.create_task_group() as tg:
        for kind in dict.fromkeys(plan.spec.kind for plan in plans):
            tg.start_soon(one_kind, kind)
    return [results[index] for index in range(len(plans))]


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


def render_json(found: list[Check], backends: list[dict[str, Any]] | None = None) -> str:
    data: dict[str, Any] = {"ok": not failed(found), "checks": [c.as_dict() for c in found]}
    if backends is not None:
        data["backends"] = backends
    return json.dumps(data, ensure_ascii=False)


def doctor_command(env: Mapping[str, str], env_file: str, *, as_json: bool = False) -> int:
    # The checks call the backends, which log their own view of failures; here the
    # screen says it all.
    logger.disable("copilot_cli_proxy")
    try:
        found, backends = anyio.run(run_doctor, env, env_file)
    finally:
        logger.enable("copilot_cli_proxy")
    print(render_json(found, backends) if as_json else render(found))
    return 1 if failed(found) else 0
