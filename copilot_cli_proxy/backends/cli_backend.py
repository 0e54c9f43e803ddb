"""What both one-shot CLI backends share: find the CLI, run it once per request in a
private temp dir, turn its JSON lines into events, map its failures to clear errors.

A concrete backend supplies four pure-ish pieces: how to lay out the request dir
and build argv (``prepare``), how to read its output (``new_parser``), how to
discover models, and its name.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from anyio.abc import TaskGroup
from loguru import logger

from copilot_cli_proxy.backends.base import (
    BackendEvent,
    BackendHealth,
    CliStatus,
    ModelInfo,
    RunRecord,
)
from copilot_cli_proxy.backends.models import ModelCatalog
from copilot_cli_proxy.backends.prompt import CliPrompt, build_cli_prompt
from copilot_cli_proxy.backends.structured import check_schema, structured_answer
from copilot_cli_proxy.config.registry import KINDS
from copilot_cli_proxy.core.request import ChatRequest, Message
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.runtime.childenv import child_environment
from copilot_cli_proxy.runtime.process import CliRun, capture_cli, run_cli
from copilot_cli_proxy.runtime.workdir import ensure_base, request_workdir
from copilot_cli_proxy.settings import PROJECT_ROOT, Settings

VERSION_PROBE_TIMEOUT_S = 60.0
# Our own settings that must not leak into the CLI's environment.
NPM_PACKAGES = {"copilot": "@github/copilot", "claude": "@anthropic-ai/claude-code"}
# `copilot login` / `claude auth login` (reference/cli/*-help.txt).
LOGIN_SUBCOMMANDS = {"copilot": ("login",), "claude": ("auth", "login")}


def resolve_cli(configured: str, name: str, project_root: Path = PROJECT_ROOT) -> str | None:
    """Configured path, else ``name`` on PATH, else the project's npm install."""
    if configured:
        if os.sep not in configured:
            found = shutil.which(configured)
            return str(Path(found).absolute()) if found else None
        path = Path(configured).expanduser().absolute()
        return str(path) if path.exists() else None
    on_path = shutil.which(name)
    if on_path:
        return on_path
    local = project_root / "node_modules" / ".bin" / name
    return str(local) if local.exists() else None


def cli_env(
    base: Mapping[str, str] | None = None,
    *,
    kind: str | None = None,
    extra_names: tuple[str, ...] = (),
) -> dict[str, str]:
    """A CLI child's environment: the allowlist of its kind plus ``extra_names``
    (runtime/childenv.py), never the server's own secrets or another backend's.
    Without a kind: what any CLI kind may see (the login and doctor commands)."""
    kinds = [KINDS[kind]] if kind else [k for k in KINDS.values() if k.executable]
    return child_environment(
        os.environ if base is None else base,
        prefixes=tuple(p for k in kinds for p in k.env_prefixes),
        names=tuple(n for k in kinds for n in k.env_names) + extra_names,
        overrides={"NO_COLOR": "1"},
    )


def parse_json_line(line: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


@dataclass(frozen=True, slots=True)
class Invocation:
    argv: list[str]
    stdin: bytes | None
    redacted_argv: list[str]
    # Where the CLI runs and with what environment; default: the request dir, cli_env().
    cwd: Path | None = None
    env: Mapping[str, str] | None = None


class OutputParser(ABC):
    """Reads one run's stdout; raises ``ProxyError`` as soon as it sees a failure."""

    @abstractmethod
    def feed(self, obj: dict[str, Any]) -> list[BackendEvent]: ...

    def feed_text(self, line: str) -> None:  # noqa: B027 - optional hook
        """A stdout line that is not JSON (CLI noise); kept for error messages."""

    @abstractmethod
    def finish(self, exit_code: int, stderr: str, workdir: Path) -> list[BackendEvent]: ...


async def read_events(
    run: CliRun, parser: OutputParser, record: RunRecord, workdir: Path
) -> AsyncGenerator[BackendEvent, None]:
    """A run's stdout lines through its parser, then its exit, as events."""
    async for line in run.lines():
        obj = parse_json_line(line)
        if obj is None:
            parser.feed_text(line.decode("utf-8", "replace"))
            continue
        for event in parser.feed(obj):
            yield event
    details = record.cli_run()
    details.exit_code = await run.wait()
    details.stderr_tail = run.stderr_tail()
    for event in parser.finish(details.exit_code, details.stderr_tail, workdir):
        yield event


class CliBackend(ABC):
    """The ``Backend`` (core/backend.py) of every CLI: what differs per CLI is abstract."""

    name: str
    executable: str
    runner: str | None = "oneshot"  # a long-lived runner says "persistent"
    # Set from the backends file (backends/factory.py); a single-backend server uses
    # the CLI's name as its id.
    backend_id: str = ""
    extra_env: tuple[str, ...] = ()
    # What a CLI can honour besides plain chat (gateway/capabilities.py).
    capabilities: frozenset[str] = frozenset({"response_format"})
    logged_in: bool | None = None  # unknown until a backend finds out
    # Whether a structured answer that fails its check gets one repair turn (a CLI that
    # enforces the schema itself has already retried).
    repairs_structured_output: bool = True

    @property
    def id(self) -> str:
        return self.backend_id or self.name

    @property
    def kind(self) -> str:
        return f"{self.executable}-cli"

    @property
    def default_model(self) -> str:
        return self.settings.model

    def child_env(self) -> dict[str, str]:
        return cli_env(kind=self.kind, extra_names=self.extra_env)

    def __init__(self, settings: Settings, configured_path: str) -> None:
        self.settings = settings
        # CLI_ENV; a backend of the backends file gets its entry's `env` instead.
        self.extra_env = settings.cli_env
        self.cli_path = resolve_cli(configured_path, self.executable)
        self.version: str | None = None
        self.catalog = ModelCatalog(
            self._discover_models, settings.model, float(settings.models_cache_ttl)
        )
        self._started_at = time.monotonic()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, tg: TaskGroup) -> None:
        if self.cli_path is None:
            logger.warning(
                "{} CLI not found: chat requests will get 503 until it is installed",
                self.executable,
            )

    async def warm_up(self) -> None:
        """Background start-up work: version probe, then model discovery."""
        if self.cli_path is None:
            return
        self.version = await self._probe_version()
        await self.catalog.models()

    async def stop(self) -> None:
        return None

    def health(self) -> BackendHealth:
        cli = CliStatus(
            path=self.cli_path,
            found=self.cli_path is not None,
            executable=self.cli_path is not None and os.access(self.cli_path, os.X_OK),
            version=self.version,
        )
        return BackendHealth.judged(
            self.name,
            cli=cli,
            logged_in=self.logged_in,
            problems=self.problems(),
            details=self.health_details(),
        )

    def health_details(self) -> dict[str, object]:
        """This backend's own facts for /health; a runner adds its processes."""
        return {
            "backend": self.name,
            "runner": self.runner,
            "models_cached": self.catalog.cached_count,
            "model_discovery_error": self.catalog.last_error,
        }

    def problems(self) -> list[str]:
        """What keeps requests from being answered now, for /health (none known here)."""
        return []

    async def list_models(self) -> list[ModelInfo]:
        return await self.catalog.models()

    def accepts_model(self, model: str) -> bool:
        return self.catalog.accepts is not None and self.catalog.accepts(model)

    async def resolve_model(self, model: str) -> str:
        return await self.catalog.resolve(model)

    # -- login and doctor -------------------------------------------------------------------

    async def login(self, out: TextIO) -> int:
        """A CLI logs in interactively, attached to a terminal (ops/login.py runs it)."""
        print(f"Backend {self.id!r} logs in through its CLI: {self.login_command()}", file=out)
        return 2

    # -- per backend ------------------------------------------------------------------------

    @abstractmethod
    def prepare(
        self, workdir: Path, prompt: CliPrompt, model: str, request: ChatRequest, cli: str
    ) -> Invocation: ...

    @abstractmethod
    def new_parser(self, request: ChatRequest | None = None) -> OutputParser: ...

    @abstractmethod
    async def _discover_models(self) -> list[ModelInfo]: ...

    def check_request(self, request: ChatRequest) -> None:
        """Cheap checks before a slot is taken (e.g. argument size limits)."""
        if request.response_format is not None:
            check_schema(request.response_format)

    # -- shared -----------------------------------------------------------------------------

    def require_cli(self) -> str:
        if self.cli_path is None:
            raise ProxyError(
                "cli_not_found",
                f"The {self.executable} CLI is not installed on the server. The operator can "
                f"install it with `npm install {NPM_PACKAGES[self.executable]}` (or run "
                f"scripts/setup.sh) or set {self.executable.upper()}_CLI_PATH.",
            )
        if not os.access(self.cli_path, os.X_OK):
            raise ProxyError(
                "cli_not_found",
                f"The {self.executable} CLI at {self.cli_path} is not executable. The operator "
                f"can fix its permissions (chmod +x) or set {self.executable.upper()}_CLI_PATH.",
            )
        return self.cli_path

    async def run_text(
        self, *args: str, stdin: bytes | None = None, limit_s: float = VERSION_PROBE_TIMEOUT_S
    ) -> str:
        """Run the CLI with ``args`` to completion and return its stdout."""
        cli = self.require_cli()
        base = self.settings.temp_base
        try:
            ensure_base(base)
        except OSError as exc:
            raise ProxyError(
                "cli_start_failed",
                f"The server cannot use TEMP_DIR_BASE {base}: {exc.strerror or exc}.",
            ) from exc
        _, stdout, _ = await capture_cli(
            [cli, *args], cwd=base, env=self.child_env(), limit_s=limit_s, stdin_data=stdin
        )
        return stdout

    async def _probe_version(self) -> str | None:
        try:
            first = (await self.run_text("--version")).strip().splitlines()
        except (ProxyError, TimeoutError) as exc:
            logger.warning("{} --version failed: {}", self.executable, exc)
            return None
        return first[0] if first else None

    async def stream(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        fmt = request.response_format
        if fmt is None:
            events = self.run_once(request, record)
        else:

            def attempt(note: str | None, failed: str) -> AsyncGenerator[BackendEvent, None]:
                # A one-shot run keeps no conversation: the repair run is the
                # conversation so far, the answer that failed, and what was wrong.
                if note is None:
                    return self.run_once(request, record)
                record.attempts += 1
                more = (Message("assistant", failed), Message("user", note))
                return self.run_once(replace(request, messages=request.messages + more), record)

            events = structured_answer(fmt, attempt, repair=self.repairs_structured_output)
        async with aclosing(events) as answer:
            async for event in answer:
                yield event

    def cli_prompt(self, request: ChatRequest) -> CliPrompt:
        return build_cli_prompt(request.messages)

    async def run_once(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        cli = self.require_cli()
        model = await self.catalog.resolve(request.model)
        prompt = self.cli_prompt(request)
        details = record.cli_run()
        async with request_workdir(self.settings.temp_base) as workdir:
            details.workdir = str(workdir)
            invocation = self.prepare(workdir, prompt, model, request, cli)
            details.argv = invocation.redacted_argv
            parser = self.new_parser(request)
            async with (
                run_cli(
                    invocation.argv,
                    cwd=invocation.cwd or workdir,
                    env=self.child_env() if invocation.env is None else invocation.env,
                    stdin_data=invocation.stdin,
                ) as run,
                aclosing(read_events(run, parser, record, workdir)) as events,
            ):
                async for event in events:
                    yield event

    # -- login and doctor hooks -------------------------------------------------------------

    async def discover_models(self) -> list[ModelInfo]:
        """Ask the CLI for its models now, past the catalog's cache and fallback: the
        doctor shows a discovery failure that serving rightly hides."""
        return await self._discover_models()

    def login_argv(self, extra: Sequence[str] = ()) -> list[str]:
        """The CLI's own interactive login, with the operator's flags after it."""
        return [self.require_cli(), *LOGIN_SUBCOMMANDS[self.executable], *extra]

    def login_command(self) -> str:
        """What an operator runs to log this backend in."""
        return f"copilot-cli-proxy login {self.id}"
