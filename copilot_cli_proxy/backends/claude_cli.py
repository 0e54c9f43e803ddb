"""Claude Code CLI, one process per request:
``claude -p --output-format=stream-json --verbose --include-partial-messages``.

The prompt goes on stdin (claude reads stdin to EOF when no positional prompt is
given), so it is never argv and has no size limit. System text goes to a file in
the request dir passed with ``--system-prompt-file``. Every option uses the
``--flag=value`` form: claude's variadic options (``--tools <tools...>``) would
otherwise swallow whatever follows them. What the CLI would add on its own (files named
with ``@``, slash commands, CLAUDE.md, hooks) is turned off: see claude_guard.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from copilot_cli_proxy.backends.base import BackendEvent, ModelInfo, RunRecord
from copilot_cli_proxy.backends.claude_guard import (
    GUARD_ENV,
    GUARD_FLAGS,
    MCP_GUARD_FLAGS,
    neutralise_prompt,
    settings_argv,
)
from copilot_cli_proxy.backends.claude_output import ClaudeOutputParser
from copilot_cli_proxy.backends.claude_tools import ClaudeToolParser
from copilot_cli_proxy.backends.cli_backend import (
    CliBackend,
    Invocation,
    cli_env,
    parse_json_line,
)
from copilot_cli_proxy.backends.prompt import CliPrompt
from copilot_cli_proxy.backends.structured import schema_of
from copilot_cli_proxy.core.request import ChatRequest
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.settings import Settings
from copilot_cli_proxy.tools.request_tools import (
    current_endpoint,
    mcp_argv_parts,
    run_with_request_tools,
)

SYSTEM_PROMPT_FILE = "system-prompt.md"
DISCOVERY_TIMEOUT_S = 60.0
EFFORTS = ("low", "medium", "high", "xhigh", "max")
INITIALIZE_REQUEST_ID = "models_1"
LOGIN_CHECK_INTERVAL_S = 300.0
LOGIN_CHECK_TIMEOUT_S = 30.0


def not_logged_in_problem(command: str) -> str:
    return (
        f"the claude CLI is not logged in: run `{command}` (or `claude auth login`) as the "
        "user that runs the server"
    )


# A model's full name, as `--model` takes it ("claude-sonnet-4-5", "claude-opus-4-8[1m]"):
# the CLI passes it to the API as it is, and an unknown one comes back as model_not_found.
FULL_MODEL_ID = re.compile(r"claude-[a-z0-9]+(?:[.-][a-z0-9]+)*(?:\[1m\])?")
ONE_MILLION_SUFFIX = "[1m]"
# One argv string may be at most 128 KiB (Linux MAX_ARG_STRLEN); keep a margin.
MAX_SCHEMA_ARG_BYTES = 100_000


def build_claude_argv(
    cli: str,
    *,
    model: str,
    system_prompt_file: Path,
    allowed_tools: tuple[str, ...] = (),
    effort: str | None = None,
    json_schema: str | None = None,
    mcp_config: Path | None = None,
    mcp_tools: tuple[str, ...] = (),
) -> list[str]:
    """``mcp_config``/``mcp_tools``: the request's own MCP endpoint (tools/request_tools) and the
    CLI's names of its tools, the only MCP tools allowed."""
    tools = ",".join(allowed_tools)
    argv = [
        cli,
        "-p",
        "--output-format=stream-json",
        "--verbose",
        "--include-partial-messages",
        f"--model={model}",
        f"--system-prompt-file={system_prompt_file}",
        # Tools off unless the operator listed some: no built-in tool, no MCP server,
        # and anything not pre-approved is denied instead of asked for.
        f"--tools={tools}",
        "--permission-mode=dontAsk",
        "--strict-mcp-config",
        "--no-session-persistence",
        # --safe-mode turns MCP servers off, the request's own too: with client tools, no
        # settings file is read instead (no hooks, plugins or output styles from it).
        *(GUARD_FLAGS if mcp_config is None else MCP_GUARD_FLAGS),
        *settings_argv(allowed_tools),
    ]
    if mcp_config is not None:
        argv.append(f"--mcp-config={mcp_config}")
    if allowed_tools or mcp_tools:
        argv.append(f"--allowedTools={','.join((*allowed_tools, *mcp_tools))}")
    if effort in EFFORTS:
        argv.append(f"--effort={effort}")
    if json_schema is not None:
        # The CLI offers the model a StructuredOutput tool with this schema, checks its
        # input, and reports it as result.structured_output.
        argv.append(f"--json-schema={json_schema}")
    return argv


def json_schema_arg(request: ChatRequest) -> str | None:
    """``--json-schema``'s value: the request's schema; json_object is any object."""
    fmt = request.response_format
    if fmt is None:
        return None
    return json.dumps(schema_of(fmt), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def check_schema_arg(request: ChatRequest) -> None:
    """The schema is one argv string: the kernel refuses a longer one (MAX_ARG_STRLEN)."""
    schema = json_schema_arg(request)
    if schema is not None and len(schema.encode("utf-8")) > MAX_SCHEMA_ARG_BYTES:
        raise ProxyError(
            "invalid_request",
            f"'response_format.json_schema.schema' is too large for the claude CLI "
            f"({len(schema.encode('utf-8'))} bytes as JSON; at most {MAX_SCHEMA_ARG_BYTES}).",
            param="response_format.json_schema.schema",
        )


def claude_env(
    base: dict[str, str] | None = None, extra_names: tuple[str, ...] = ()
) -> dict[str, str]:
    """The CLI's allowlisted environment, plus the switches of claude_guard."""
    return {**cli_env(base, kind="claude-cli", extra_names=extra_names), **GUARD_ENV}


def accepts_full_model_id(model: str) -> bool:
    return FULL_MODEL_ID.fullmatch(model) is not None


def initialize_request_line() -> bytes:
    request = {
        "type": "control_request",
        "request_id": INITIALIZE_REQUEST_ID,
        "request": {"subtype": "initialize", "hooks": None},
    }
    return json.dumps(request).encode() + b"\n"


def _initialize_models(stdout: str) -> list[dict[str, Any]]:
    for line in stdout.splitlines():
        obj = parse_json_line(line.encode("utf-8"))
        if not obj or obj.get("type") != "control_response":
            continue
        response = obj.get("response")
        if not isinstance(response, dict) or response.get("subtype") != "success":
            continue
        inner = response.get("response")
        models = inner.get("models") if isinstance(inner, dict) else None
        if isinstance(models, list):
            return [m for m in models if isinstance(m, dict) and isinstance(m.get("value"), str)]
    return []


def _names_of(resolved: str) -> tuple[str, ...]:
    """A resolved model and its plain name: "claude-opus-4-8[1m]" also runs as "claude-opus-4-8"."""
    plain = resolved.removesuffix(ONE_MILLION_SUFFIX)
    return (resolved, plain) if plain != resolved else (resolved,)


def parse_initialize_models(stdout: str) -> list[ModelInfo]:
    """Models from the ``initialize`` control_response (``response.response.models[]``):
    each alias the CLI offers (its resolved full name accepted too), then each full name."""
    aliases: list[ModelInfo] = []
    full: dict[str, ModelInfo] = {}
    for entry in _initialize_models(stdout):
        shown = entry.get("displayName")
        display = shown if isinstance(shown, str) else None
        resolved = entry.get("resolvedModel")
        names = _names_of(resolved) if isinstance(resolved, str) and resolved else ()
        aliases.append(ModelInfo(entry["value"], "anthropic", display, names))
        if names and (names[0] not in full or entry["value"] != "default"):
            full[names[0]] = ModelInfo(names[0], "anthropic", display, names[1:])
    return aliases + [m for m in full.values() if m.id not in {a.id for a in aliases}]


def describe(exc: BaseException) -> str:
    """An exception for /health and the log: ours by its message, others by type and text."""
    return exc.message if isinstance(exc, ProxyError) else f"{type(exc).__name__}: {exc}"


def parse_auth_status(stdout: str) -> bool | None:
    """``claude auth status`` (JSON, exit code 1 when logged out): loggedIn, or None."""
    try:
        status = json.loads(stdout)
    except ValueError:
        return None
    logged_in = status.get("loggedIn") if isinstance(status, dict) else None
    return logged_in if isinstance(logged_in, bool) else None


class ClaudeCliBackend(CliBackend):
    name = "claude"
    executable = "claude"
    # --json-schema: the CLI itself makes the model answer again until it validates.
    repairs_structured_output = False
    # The client's tools, through a per-request MCP endpoint (tools/request_tools).
    capabilities = frozenset({"tools", "response_format"})

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.claude_cli_path)
        self.catalog.accepts = accepts_full_model_id
        self.logged_in: bool | None = None
        self._login_problem: str | None = None

    async def start(self, tg: TaskGroup) -> None:
        await super().start(tg)
        if self.cli_path is not None:
            tg.start_soon(self._watch_login)

    async def warm_up(self) -> None:
        await super().warm_up()
        # After discovery, not beside it: both write ~/.claude.json, and parallel
        # writers corrupt it.
        if self.cli_path is not None:
            await self.check_login()

    def problems(self) -> list[str]:
        """What keeps requests from being answered now, for /health."""
        if self.logged_in is False:
            return [not_logged_in_problem(self.login_command())]
        return [self._login_problem] if self._login_problem else []

    async def check_login(self) -> bool | None:
        """Ask ``claude auth status``; never raises (a failure makes the state unknown)."""
        try:
            stdout = await self.run_text("auth", "status", limit_s=LOGIN_CHECK_TIMEOUT_S)
        except Exception as exc:  # a probe must never end the server's task group
            self._login_problem = (
                f"could not ask the claude CLI for its login state: {describe(exc)}"
            )
            self.logged_in = None
            return None
        # Not logged in: gateway/login_watch.py warns once, with the backend's login command.
        self.logged_in = parse_auth_status(stdout)
        if self.logged_in is None:
            shown = stdout.strip()[:200] or "no output"
            self._login_problem = f"`claude auth status` gave no login state: {shown}"
        else:
            self._login_problem = None
        return self.logged_in

    async def _watch_login(self) -> None:
        """The login state, off the request path: after warm-up, then every few minutes."""
        while True:
            await anyio.sleep(LOGIN_CHECK_INTERVAL_S)
            await self.check_login()

    def child_env(self) -> dict[str, str]:
        return claude_env(extra_names=self.extra_env)

    def prepare(
        self, workdir: Path, prompt: CliPrompt, model: str, request: ChatRequest, cli: str
    ) -> Invocation:
        system_file = workdir / SYSTEM_PROMPT_FILE
        write_system_prompt(system_file, prompt.system)
        mcp_config, mcp_tools = mcp_argv_parts(workdir)
        argv = build_claude_argv(
            cli,
            model=model,
            system_prompt_file=system_file,
            allowed_tools=self.settings.allowed_tools,
            effort=request.reasoning_effort,
            json_schema=json_schema_arg(request),
            mcp_config=mcp_config,
            mcp_tools=mcp_tools,
        )
        stdin = neutralise_prompt(prompt.prompt).encode("utf-8")
        return Invocation(argv=argv, stdin=stdin, redacted_argv=argv)

    def check_request(self, request: ChatRequest) -> None:
        super().check_request(request)
        check_schema_arg(request)

    def new_parser(self, request: ChatRequest | None = None) -> ClaudeOutputParser:
        structured = request is not None and request.response_format is not None
        if current_endpoint.get() is not None:
            return ClaudeToolParser(structured=structured)
        return ClaudeOutputParser(structured=structured)

    async def stream(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        """With the client's tools: the run inside the request's MCP endpoint (request_tools)."""
        run_once = super().stream
        run = run_with_request_tools(request, lambda request: run_once(request, record))
        async with aclosing(run) as events:
            async for event in events:
                yield event

    async def _discover_models(self) -> list[ModelInfo]:
        stdout = await self.run_text(
            "-p",
            "--input-format=stream-json",
            "--output-format=stream-json",
            "--verbose",
            stdin=initialize_request_line(),
            limit_s=DISCOVERY_TIMEOUT_S,
        )
        models = parse_initialize_models(stdout)
        if not models:
            raise ValueError("the claude CLI's initialize reply listed no models")
        return models


def write_system_prompt(path: Path, text: str) -> None:
    """The system text for ``--system-prompt-file``; a server-side failure is a clear 503."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ProxyError(
            "cli_start_failed",
            f"The server could not write the request's system prompt file: {exc.strerror or exc}.",
        ) from exc
