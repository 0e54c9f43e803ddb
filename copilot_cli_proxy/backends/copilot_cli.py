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

import json
import os
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
from loguru import logger

from copilot_cli_proxy.backends.base import (
    BackendEvent,
    Finish,
    ModelInfo,
    RunRecord,
    TextDelta,
    Usage,
)
from copilot_cli_proxy.backends.cli_backend import CliBackend, Invocation, OutputParser
from copilot_cli_proxy.backends.copilot_auth import (
    LOGIN_HINT,
    byok_enabled,
    byok_model,
    is_auth_failure,
    login_problem,
    stored_login_state,
)
from copilot_cli_proxy.backends.copilot_isolation import (
    isolated_env,
    make_private_home,
    mark_git_root,
    operator_copilot_home,
)
from copilot_cli_proxy.backends.models import owned_by
from copilot_cli_proxy.backends.prompt import CliPrompt, build_cli_prompt
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.requests import ChatRequest
from copilot_cli_proxy.runtime.process import capture_cli
from copilot_cli_proxy.runtime.workdir import request_workdir
from copilot_cli_proxy.settings import Settings

MAX_ARG_BYTES = 131072  # Linux MAX_ARG_STRLEN, including the terminating NUL
PROMPT_FLAG = "--prompt="
USAGE_FILE = "usage.json"
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
) -> list[str]:
    """argv for one run. Every value uses ``--flag=value`` so none can become a flag."""
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
    if allowed_tools:
        argv += [f"--available-tools={tool}" for tool in allowed_tools]
        argv += [f"--allow-tool={tool}" for tool in allowed_tools]
    else:
        argv.append(f"--available-tools={NO_TOOL}")
        argv += DENY_ALL_TOOLS
    if reasoning_effort:
        argv.append(f"--reasoning-effort={reasoning_effort}")
    return argv


def redact_argv(argv: list[str]) -> list[str]:
    return [
        f"{PROMPT_FLAG}<{len(arg) - len(PROMPT_FLAG)} chars>"
        if arg.startswith(PROMPT_FLAG)
        else arg
        for arg in argv
    ]


def prompt_arg_fits(prompt: str) -> bool:
    return len((PROMPT_FLAG + prompt).encode("utf-8")) + 1 <= MAX_ARG_BYTES


def usage_from_metrics(metrics: dict[str, Any]) -> Usage | None:
    """Sum ``modelMetrics.*.usage`` from ``--usage-output-file``."""
    model_metrics = metrics.get("modelMetrics")
    if not isinstance(model_metrics, dict) or not model_metrics:
        return None
    totals = {"inputTokens": 0, "outputTokens": 0, "cacheReadTokens": 0, "reasoningTokens": 0}
    seen: set[str] = set()
    for entry in model_metrics.values():
        usage = entry.get("usage") if isinstance(entry, dict) else None
        if not isinstance(usage, dict):
            continue
        for key in totals:
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                totals[key] += value
                seen.add(key)
    if not {"inputTokens", "outputTokens"} <= seen:
        return None
    return Usage(
        prompt_tokens=totals["inputTokens"],
        completion_tokens=totals["outputTokens"],
        cached_prompt_tokens=totals["cacheReadTokens"] if "cacheReadTokens" in seen else None,
        reasoning_tokens=totals["reasoningTokens"] if "reasoningTokens" in seen else None,
    )


def _first_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:count])


class CopilotOutputParser(OutputParser):
    """``--output-format json``: session events, then one ``result`` line."""

    def __init__(self, login_error: str = LOGIN_HINT) -> None:
        # What a not-logged-in failure tells the client (the same in both runners).
        self._login_error = login_error
        self._streamed_messages: set[str] = set()
        self._output_tokens: int | None = None
        self._result: dict[str, Any] | None = None
        # Headless sessions only: per-call token counts, and the end-of-turn marker.
        self._call_usage: dict[str, int] = {}
        self.idle = False

    def feed(self, obj: dict[str, Any]) -> list[BackendEvent]:
        kind = obj.get("type")
        raw_data = obj.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        if kind == "assistant.message_delta":
            text = data.get("deltaContent")
            self._streamed_messages.add(str(data.get("messageId")))
            return [TextDelta(text)] if isinstance(text, str) and text else []
        if kind == "assistant.message":
            tokens = data.get("outputTokens")
            if isinstance(tokens, int) and not isinstance(tokens, bool):
                self._output_tokens = (self._output_tokens or 0) + tokens
            content = data.get("content")
            # Without streaming deltas (e.g. a model that does not stream), the whole
            # message is the only copy of the text.
            if str(data.get("messageId")) not in self._streamed_messages and content:
                return [TextDelta(str(content))]
            return []
        if kind == "session.error":
            message = str(data.get("message") or "unknown error")
            if is_auth_failure(message):
                raise ProxyError("cli_not_logged_in", self._login_error)
            raise ProxyError("cli_failed", f"The copilot CLI reported an error: {message}")
        if kind == "assistant.usage":
            for key in ("inputTokens", "outputTokens", "cacheReadTokens", "reasoningTokens"):
                value = data.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    self._call_usage[key] = self._call_usage.get(key, 0) + value
            return []
        if kind == "session.idle":
            self.idle = True
            return []
        if kind == "result":
            self._result = obj
        return []

    def session_usage(self) -> Usage:
        """Usage of a headless turn: the sum of its ``assistant.usage`` events."""
        calls = self._call_usage
        if "inputTokens" not in calls or "outputTokens" not in calls:
            return Usage(completion_tokens=self._output_tokens)
        return Usage(
            prompt_tokens=calls["inputTokens"],
            completion_tokens=calls["outputTokens"],
            cached_prompt_tokens=calls.get("cacheReadTokens"),
            reasoning_tokens=calls.get("reasoningTokens"),
        )

    def finish(self, exit_code: int, stderr: str, workdir: Path) -> list[BackendEvent]:
        if is_auth_failure(stderr):
            raise ProxyError("cli_not_logged_in", self._login_error)
        result_code = self._result.get("exitCode") if self._result else None
        if exit_code != 0 or (isinstance(result_code, int) and result_code != 0):
            detail = _first_lines(stderr) or f"exit code {exit_code}"
            raise ProxyError("cli_failed", f"The copilot CLI failed: {detail}")
        if self._result is None:
            raise ProxyError("cli_failed", "The copilot CLI ended without a result.")
        if self._result.get("outcome") == "blocked":
            blocker = self._result.get("blocker") or "a permission it does not have"
            raise ProxyError(
                "cli_failed", f"The copilot CLI could not finish: blocked by {blocker}"
            )
        usage = None
        usage_path = workdir / USAGE_FILE
        if usage_path.is_file():
            try:
                metrics = json.loads(usage_path.read_text("utf-8"))
            except (OSError, ValueError):
                metrics = None
            usage = usage_from_metrics(metrics) if isinstance(metrics, dict) else None
        if usage is None:
            usage = Usage(completion_tokens=self._output_tokens)
        return [usage, Finish("stop")]


# `copilot help config`: the `model` setting lists its ids as `    - "<id>"` lines.
_CONFIG_MODEL_LINE = re.compile(r'^    - "([^"]+)"$')
# Older CLIs: `--model <model>  Set the AI model to use (choices: "a", "b", …)` in --help.
_HELP_CHOICES = re.compile(r"--model <model>[^(]*\(choices:(?P<body>[^)]*)\)", re.DOTALL)


def parse_config_help_models(text: str) -> list[str]:
    ids: list[str] = []
    in_model_block = False
    for line in text.splitlines():
        if line.startswith("  `"):
            in_model_block = line.startswith("  `model`:")
            continue
        match = _CONFIG_MODEL_LINE.match(line)
        if in_model_block and match:
            ids.append(match.group(1))
    return ids


def parse_help_choices_models(text: str) -> list[str]:
    match = _HELP_CHOICES.search(text)
    return re.findall(r'"([^"]+)"', match.group("body")) if match else []


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

    def health(self) -> dict[str, Any]:
        status = super().health()
        status["logged_in"] = self.logged_in
        status["problems"] = self.problems()
        return status

    def problems(self) -> list[str]:
        """What keeps requests from being answered, each with what the operator can do."""
        found: list[str] = []
        if self.cli_path is None:
            try:
                self.require_cli()
            except ProxyError as exc:
                found.append(exc.message)
        if self.logged_in is False:
            found.append(login_problem(os.environ))
        if self.background_error:
            found.append(self.background_error)
        return found

    # -- one run ------------------------------------------------------------------------

    def check_request(self, request: ChatRequest) -> None:
        check_prompt_arg(build_cli_prompt(request.messages).prompt)

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
        argv = build_copilot_argv(
            cli,
            prompt=prompt.prompt,
            model=model,
            usage_file=workdir / USAGE_FILE,
            allowed_tools=self.settings.allowed_tools,
            reasoning_effort=request.reasoning_effort,
        )
        return Invocation(
            argv=argv,
            stdin=None,
            redacted_argv=redact_argv(argv),
            cwd=work,
            env=isolated_env(home),
        )

    def new_parser(self) -> CopilotOutputParser:
        return CopilotOutputParser(login_problem(os.environ))

    async def stream(
        self, request: ChatRequest, record: RunRecord
    ) -> AsyncGenerator[BackendEvent, None]:
        try:
            async with aclosing(super().stream(request, record)) as events:
                async for event in events:
                    yield event
        except ProxyError as exc:
            if exc.code == "cli_not_logged_in":
                self.note_login(False)
            raise
        self.note_login(True)

    async def run_text(
        self, *args: str, stdin: bytes | None = None, limit_s: float = DISCOVERY_TIMEOUT_S
    ) -> str:
        """Run the CLI with ``args`` to completion, in a private home; return its stdout."""
        cli = self.require_cli()
        async with request_workdir(self.settings.temp_base) as workdir:
            home = make_private_home(workdir / HOME_DIR, operator_copilot_home())
            _, stdout, _ = await capture_cli(
                [cli, *args], cwd=workdir, env=isolated_env(home), limit_s=limit_s, stdin_data=stdin
            )
        return stdout

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
