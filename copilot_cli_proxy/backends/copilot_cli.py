"""GitHub Copilot CLI, one process per request: ``copilot --prompt=… --output-format=json``.

Copilot takes its prompt only as an option value, so the prompt is argv: always in
the ``--prompt=<text>`` form, so that a prompt starting with ``-`` stays data.
Linux limits one argv string to 128 KiB; larger conversations get a clear 413.
System text goes to AGENTS.md in the request's working directory, which copilot
loads as instructions; that directory is its own git root and the run has a private
copilot home, so no other instruction file is read and no conversation is kept
(``copilot_isolation.py``). Token counts come from ``--usage-output-file`` (the JSON
event stream carries output tokens only).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path

import anyio
from loguru import logger

from copilot_cli_proxy.backends.base import (
    BackendEvent,
    ModelInfo,
    RunRecord,
)
from copilot_cli_proxy.backends.cli_backend import CliBackend, Invocation
from copilot_cli_proxy.backends.copilot_auth import (
    LOGIN_COMMAND,
    byok_enabled,
    byok_model,
    login_problem,
    stored_login_state,
)
from copilot_cli_proxy.backends.copilot_isolation import (
    isolated_env,
    make_private_home,
    mark_git_root,
    operator_copilot_home,
)
from copilot_cli_proxy.backends.copilot_output import (
    USAGE_FILE,
    CopilotOutputParser,
    parse_config_help_models,
    parse_help_choices_models,
)
from copilot_cli_proxy.backends.copilot_tools import CopilotToolParser, mcp_tool_name
from copilot_cli_proxy.backends.models import owned_by
from copilot_cli_proxy.backends.prompt import CliPrompt, build_cli_prompt
from copilot_cli_proxy.backends.structured import with_instruction
from copilot_cli_proxy.core.request import ChatRequest
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.settings import Settings
from copilot_cli_proxy.tools.mcp_endpoint import SERVER_NAME
from copilot_cli_proxy.tools.request_tools import (
    current_endpoint,
    mcp_argv_parts,
    run_with_request_tools,
    until_tool_calls,
)

MAX_ARG_BYTES = 131072  # Linux MAX_ARG_STRLEN, including the terminating NUL
PROMPT_FLAG = "--prompt="
INSTRUCTIONS_FILE = "AGENTS.md"
WORK_DIR = "work"  # the CLI's working directory, inside the request dir
HOME_DIR = "home"  # the run's private copilot home, inside the request dir
DISCOVERY_TIMEOUT_S = 60.0
LOGIN_CHECK_INTERVAL_S = 300.0

# Tools off. `--available-tools` naming no real tool leaves the model none (an empty
# `--available-tools=` does nothing: 17 tools, `session_store_sql` among them); the
# deny rules are a second layer (they win over every allow rule, even --allow-all-tools).
NO_TOOL = "copilot-cli-proxy-offers-no-tools"
DENY_ALL_TOOLS = ("--deny-tool=shell", "--deny-tool=write", "--deny-tool=url")


def build_copilot_argv(
    cli: str,
    *,
    prompt: str,
    model: str,
    usage_file: Path,
    allowed_tools: tuple[str, ...] = (),
    reasoning_effort: str | None = None,
    mcp_config: Path | None = None,
    mcp_tools: tuple[str, ...] = (),
) -> list[str]:
    """argv for one run. Every value uses ``--flag=value`` so none can become a flag.

    ``mcp_config``/``mcp_tools``: the request's MCP endpoint (copilot_tools) and copilot's
    names of its tools, which are then the model's tools besides the operator's."""
    argv = [
        cli,
        PROMPT_FLAG + prompt,
        "--output-format=json",
        "--stream=on",
        f"--model={model}",
        "--no-color",
        "--no-auto-update",
        "--no-ask-user",
        "--disable-builtin-mcps",
        "--disallow-temp-dir",
        f"--usage-output-file={usage_file}",
    ]
    if mcp_config is not None:
        argv.append(f"--additional-mcp-config=@{mcp_config}")
    available = (*allowed_tools, *mcp_tools)
    argv += [f"--available-tools={tool}" for tool in available or (NO_TOOL,)]
    # The client's tools are allowed so that a call reaches the endpoint, which holds it
    # unanswered until the CLI is stopped. Refused instead, the CLI would at once tell
    # the model so and ask it again: a model request nobody reads.
    argv += [f"--allow-tool={tool}" for tool in (*allowed_tools, *mcp_permissions(mcp_tools))]
    if not allowed_tools:
        argv += DENY_ALL_TOOLS
    if reasoning_effort:
        argv.append(f"--reasoning-effort={reasoning_effort}")
    return argv


def mcp_permissions(mcp_tools: tuple[str, ...]) -> tuple[str, ...]:
    """``--allow-tool`` patterns for the endpoint's tools: ``client(<tool>)``, each one."""
    prefix = f"{SERVER_NAME}-"
    return tuple(f"{SERVER_NAME}({t.removeprefix(prefix)})" for t in mcp_tools)


def redact_argv(argv: list[str]) -> list[str]:
    return [
        f"{PROMPT_FLAG}<{len(arg) - len(PROMPT_FLAG)} chars>"
        if arg.startswith(PROMPT_FLAG)
        else arg
        for arg in argv
    ]


def prompt_arg_fits(prompt: str) -> bool:
    return len((PROMPT_FLAG + prompt).encode("utf-8")) + 1 <= MAX_ARG_BYTES


def check_prompt_arg(prompt: str) -> None:
    """The prompt must be one spawnable argument: no NUL, within 128 KiB."""
    if "\x00" in prompt:
        # An argv string ends at its first NUL: the spawn itself would fail.
        raise ProxyError(
            "invalid_request",
            "The conversation contains a NUL character, which the copilot CLI cannot "
            "receive (its prompt is a command-line argument).",
            param="messages",
        )
    if not prompt_arg_fits(prompt):
        raise ProxyError(
            "prompt_too_large",
            f"The conversation is {len(prompt.encode('utf-8'))} bytes; the copilot CLI "
            f"takes its prompt as one argument, limited to {MAX_ARG_BYTES // 1024} KiB. "
            "Shorten the conversation.",
            param="messages",
        )


class CopilotCliBackend(CliBackend):
    name = "copilot"
    executable = "copilot"
    # The client's tools: through the request's MCP endpoint here, as the session's
    # custom tools in the persistent runner (copilot_tools).
    capabilities = frozenset({"tools", "response_format"})

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.copilot_cli_path)
        # Whether copilot has a login: a guess from env and files, then what runs showed.
        self.logged_in: bool | None = True if byok_enabled(os.environ) else None
        # The last failure of background work, until that work succeeds again.
        self.background_error: str | None = None

    # -- background work: never raises, so it can never end the server's task group ----

    async def warm_up(self) -> None:
        """Version probe and model discovery, then the periodic checks, until stopped."""
        try:
            await super().warm_up()
        except Exception as exc:
            self._background_failed("the start-up checks", exc)
        await self.supervise()

    async def supervise(self) -> None:
        """One-shot: refresh the login guess every few minutes (no CLI run: cheap)."""
        while True:
            try:
                self._guess_login()
            except Exception as exc:
                self._background_failed("the login check", exc)
            await anyio.sleep(LOGIN_CHECK_INTERVAL_S)

    def _background_failed(self, what: str, exc: BaseException) -> None:
        detail = str(exc) or type(exc).__name__
        self.background_error = f"{what} failed: {detail}"
        logger.opt(exception=exc).warning("copilot: {} failed; retrying later", what)

    def _guess_login(self) -> None:
        guess = stored_login_state(os.environ, operator_copilot_home())
        if guess is not None or self.logged_in is None:
            self.logged_in = guess

    def note_login(self, logged_in: bool) -> None:
        """What a real run showed, which beats any guess."""
        if self.logged_in is not logged_in:
            logger.info("copilot login state: {}", "logged in" if logged_in else "not logged in")
        self.logged_in = logged_in

    def problems(self) -> list[str]:
        """What keeps requests from being answered, each with what the operator can do."""
        found: list[str] = []
        if self.cli_path is None:
            try:
                self.require_cli()
            except ProxyError as exc:
                found.append(exc.message)
        if self.logged_in is False:
            found.append(login_problem(os.environ).replace(LOGIN_COMMAND, self.login_command()))
        if self.background_error:
            found.append(self.background_error)
        return found

    # -- one run ------------------------------------------------------------------------

    def check_request(self, request: ChatRequest) -> None:
        super().check_request(request)
        check_prompt_arg(build_cli_prompt(request.messages).prompt)

    def cli_prompt(self, request: ChatRequest) -> CliPrompt:
        # Copilot cannot enforce a format: the system text asks for it (checked after).
        prompt = build_cli_prompt(request.messages)
        return replace(prompt, system=with_instruction(prompt.system, request.response_format))

    def prepare(
        self, workdir: Path, prompt: CliPrompt, model: str, request: ChatRequest, cli: str
    ) -> Invocation:
        check_prompt_arg(prompt.prompt)
        work = workdir / WORK_DIR
        work.mkdir()
        mark_git_root(work)
        home = make_private_home(workdir / HOME_DIR, operator_copilot_home())
        if prompt.system:
            (work / INSTRUCTIONS_FILE).write_text(prompt.system, encoding="utf-8")
        mcp_config, _ = mcp_argv_parts(workdir)
        endpoint = current_endpoint.get()
        argv = build_copilot_argv(
            cli,
            prompt=prompt.prompt,
            model=model,
            usage_file=workdir / USAGE_FILE,
            allowed_tools=self.settings.allowed_tools,
            reasoning_effort=request.reasoning_effort,
            mcp_config=mcp_config,
            mcp_tools=tuple(map(mcp_tool_name, endpoint.tool_names)) if endpoint else (),
        )
        return Invocation(
            argv=argv,
            stdin=None,
            redacted_argv=redact_argv(argv),
            cwd=work,
            env=isolated_env(home, extra_names=self.extra_env),
        )

    def new_parser(self, request: ChatRequest | None = None) -> CopilotOutputParser:
        endpoint = current_endpoint.get()
        if endpoint is not None:
            return CopilotToolParser(login_problem(os.environ), endpoint.tool_names)
        return CopilotOutputParser(login_problem(os.environ))

    async def stream(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        """With the client's tools: the run inside the request's MCP endpoint."""
        run_once = super().stream
        run = run_with_request_tools(request, lambda request: run_once(request, record))
        try:
            async with aclosing(run) as events:
                async for event in events:
                    yield event
        except ProxyError as exc:
            if exc.code == "cli_not_logged_in":
                self.note_login(False)
            raise
        self.note_login(True)

    async def run_once(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        # Each run stops at its tool calls, also inside a structured answer (which reads
        # its runs to the end): the CLI would wait on the held call until the timeout.
        async with aclosing(until_tool_calls(super().run_once(request, record))) as events:
            async for event in events:
                yield event

    async def _discover_models(self) -> list[ModelInfo]:
        ids = parse_config_help_models(
            await self.run_text("help", "config", limit_s=DISCOVERY_TIMEOUT_S)
        )
        if not ids:
            ids = parse_help_choices_models(
                await self.run_text("--help", limit_s=DISCOVERY_TIMEOUT_S)
            )
        if not ids:
            raise ValueError("found no model list in `copilot help config` or `copilot --help`")
        # A BYOK operator's own model is served too (COPILOT_MODEL, as one-shot uses it).
        own = byok_model(os.environ)
        if own and own not in ids:
            ids.append(own)
        return [ModelInfo(id=i, owned_by=owned_by(i, "github-copilot")) for i in ids]
