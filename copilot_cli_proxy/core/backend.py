"""The one interface every backend implements, and what it reports back.

A backend turns one ``ChatRequest`` into an async stream of events
(``TextDelta``… ``ToolCallEvent``… ``Usage``? ``Finish``); a failure is raised as a
``ProxyError``. The gateway, the routes, observability, ops and the app know a backend
only through ``Backend``: a CLI run once per request, a pool of long-lived CLI
processes, an HTTP upstream or a test script are interchangeable behind it.

It lives in ``core`` (below ``backends``, ``gateway``, ``routes``, ``observe`` and
``ops``) so that every user imports it downward.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TextIO, runtime_checkable

from anyio.abc import TaskGroup

from copilot_cli_proxy.core.request import ChatRequest
from copilot_cli_proxy.core.types import BackendEvent, ModelInfo, UpstreamBody, UpstreamChunk

# ok: answers; starting: still warming up, requests wait; degraded: known not to answer
# some or all requests now (not logged in, a failing background task); down: cannot
# answer at all (its CLI is missing or not executable).
NodeState = Literal["ok", "starting", "degraded", "down"]


@dataclass(slots=True)
class CliRunRecord:
    """The CLI details of one run; only a backend that runs a CLI fills them."""

    runner: str = ""  # persistent | oneshot
    argv: list[str] = field(default_factory=list)  # with the prompt redacted
    workdir: str | None = None
    exit_code: int | None = None
    stderr_tail: str = ""


@dataclass(slots=True)
class RunRecord:
    """What serving one request took, for the request log and metrics; filled as it goes."""

    backend_id: str = ""  # the backend the request was routed to
    node: str = ""  # the backend that answered (a pool's member; else the same id)
    attempts: int = 0  # runs made: a structured-output repair or a failover adds one
    cli: CliRunRecord | None = None

    def cli_run(self) -> CliRunRecord:
        """This request's CLI details, made on first use (a new attempt keeps the last)."""
        if self.cli is None:
            self.cli = CliRunRecord()
        return self.cli


@dataclass(frozen=True, slots=True)
class CliStatus:
    path: str | None
    found: bool
    executable: bool
    version: str | None = None


@dataclass(frozen=True, slots=True)
class BackendHealth:
    """Cheap status for /health: computed without a blocking call or a new process."""

    state: NodeState
    logged_in: bool | None = None  # None: unknown (not checked yet, or nothing to log in)
    problems: tuple[str, ...] = ()  # one short sentence per thing that keeps requests out
    cli: CliStatus | None = None  # only for a backend that runs a CLI
    # Facts of this kind of backend (runner, pool sizes, base URL …), shown as they are.
    details: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def judged(
        cls,
        name: str,
        *,
        cli: CliStatus | None = None,
        logged_in: bool | None = None,
        problems: Sequence[str] = (),
        starting: bool = False,
        details: Mapping[str, object] | None = None,
    ) -> BackendHealth:
        """The state and problems that follow from what a backend knows about itself."""
        found: list[str] = []
        state: NodeState = "starting" if starting else "ok"
        if cli is not None and not (cli.found and cli.executable):
            # A CLI that cannot run is the root cause: what follows from it (no login
            # state, failed background starts) would only bury it.
            where = f"at {cli.path} is not executable" if cli.found else "was not found"
            found, state = [f"the {name} CLI {where}"], "down"
        else:
            if cli is not None and logged_in is False and not any(p.strip() for p in problems):
                # A backend that reports problems itself says what its login needs.
                found.append(f"the {name} CLI is not logged in")
            found += [p for p in problems if p.strip()]
            if found:
                state = "degraded"
        return cls(state, logged_in, tuple(dict.fromkeys(found)), cli, dict(details or {}))

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = dict(self.details)
        if self.cli is not None:
            body["cli"] = {
                "path": self.cli.path,
                "found": self.cli.found,
                "executable": self.cli.executable,
                "version": self.cli.version,
            }
        body["logged_in"] = self.logged_in
        body["problems"] = list(self.problems)
        return body


class Backend(Protocol):
    """One way of answering chat requests."""

    @property
    def id(self) -> str:
        """Its id: the backends file's ``id``, or the CLI's name without one."""
        ...

    @property
    def kind(self) -> str:
        """Its kind in config/registry.py (``copilot-cli``, ``claude-cli``, ``openai`` …)."""
        ...

    @property
    def runner(self) -> str | None:
        """How it runs its CLI (``persistent`` | ``oneshot``); None without a CLI."""
        ...

    @property
    def capabilities(self) -> frozenset[str]:
        """The request features it honours (gateway/capabilities.py); the rest are refused
        in its name, or reported as ignored."""
        ...

    @property
    def default_model(self) -> str:
        """The model it answers a request that names none with ("" when it has none)."""
        ...

    async def start(self, tg: TaskGroup) -> None:
        """Called once when the server starts; ``tg`` lives as long as the server."""

    async def warm_up(self) -> None:
        """Background start-up work (version probe, model discovery, warm processes)."""

    async def stop(self) -> None:
        """Called once when the server stops: nothing may be left running."""

    async def list_models(self) -> list[ModelInfo]:
        """The models it serves, default model first."""
        ...

    def accepts_model(self, model: str) -> bool:
        """Whether it takes a name it does not list (claude: any full model name)."""
        ...

    async def resolve_model(self, model: str) -> str:
        """The name it runs ``model`` as; a 404 ``ProxyError`` when it serves no such model."""
        ...

    def check_request(self, request: ChatRequest) -> None:
        """Cheap checks before a slot is taken (argument size limits, schemas)."""

    def stream(self, request: ChatRequest, record: RunRecord) -> AsyncGenerator[BackendEvent, None]:
        """Answer one request. Raises ``ProxyError`` on failure."""
        ...

    def health(self) -> BackendHealth:
        """Cheap status for /health: no blocking call, no process spawned."""
        ...

    def login_command(self) -> str:
        """The command an operator runs to log this backend in (shown when it is not)."""
        ...

    async def login(self, out: TextIO) -> int:
        """``copilot-cli-proxy login <backend-id>``: log in, talking to ``out``; the exit code."""
        ...

    async def discover_models(self) -> list[ModelInfo]:
        """Its models asked for now, past any cache or fallback: ``copilot-cli-proxy doctor``
        shows a discovery failure that serving rightly hides. Raises on failure."""
        ...


@runtime_checkable
class RelayBackend(Backend, Protocol):
    """A backend that already speaks the client's API: the chat route passes the client's
    body to it and relays its answer as it comes, instead of encoding events."""

    def relay(
        self, body: dict[str, Any], *, model: str, stream: bool, include_usage: bool
    ) -> AsyncGenerator[UpstreamChunk | UpstreamBody, None]: ...
