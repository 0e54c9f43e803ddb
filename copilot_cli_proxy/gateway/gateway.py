"""The live backends of one server: each with its own slots and queue, and the router.

Routes and ops see this object only. It starts and stops every backend, merges
their model lists for ``/v1/models``, and answers "which backend serves this model
name" with that backend and its slot limiter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import anyio
from anyio.abc import TaskGroup
from loguru import logger

from copilot_cli_proxy.config.backends_file import BackendSpec, GatewayConfig
from copilot_cli_proxy.config.registry import KINDS
from copilot_cli_proxy.core.backend import Backend, BackendHealth
from copilot_cli_proxy.core.types import ModelInfo
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.gateway.login_watch import watch_logins
from copilot_cli_proxy.gateway.router import ListedModel, Target, list_models, resolve_model
from copilot_cli_proxy.runtime.limiter import ProcessLimiter
from copilot_cli_proxy.settings import Settings


@dataclass(slots=True)
class Node:
    """One configured backend, running."""

    spec: BackendSpec
    backend: Backend
    limiter: ProcessLimiter

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True, slots=True)
class Routed:
    node: Node
    model: str  # the name the backend takes
    requested: str  # the name the client sent (echoed back in the answer)


def config_from_settings(settings: Settings) -> GatewayConfig:
    """Without BACKENDS_FILE: today's variables describe one backend."""
    options: dict[str, object] = {"runner": settings.runner, "pool_size": settings.pool_size}
    cli_path = settings.cli_path_of(settings.service)
    if cli_path:
        options["cli_path"] = cli_path
    if settings.allowed_tools:
        options["allowed_tools"] = settings.allowed_tools
    spec = BackendSpec(
        id=settings.service,
        kind=f"{settings.service}-cli",
        max_concurrent=settings.max_concurrent,
        max_queue=settings.max_queue,
        default_model=settings.default_model,
        env=settings.cli_env,
        options=options,
    )
    return GatewayConfig((spec,), {}, "<environment>")


class Gateway:
    def __init__(self, settings: Settings, config: GatewayConfig, nodes: Sequence[Node]) -> None:
        self.settings = settings
        self.config = config
        self.nodes = list(nodes)
        self._by_id = {node.id: node for node in self.nodes}

    @classmethod
    def build(cls, settings: Settings, config: GatewayConfig) -> Gateway:
        nodes = []
        for spec in config.backends:
            backend: Backend = KINDS[spec.kind].load()(spec, settings)
            limiter = ProcessLimiter(
                spec.max_concurrent or settings.max_concurrent,
                settings.max_queue if spec.max_queue is None else spec.max_queue,
                settings.queue_timeout_s,
            )
            nodes.append(Node(spec, backend, limiter))
        return cls(settings, config, nodes)

    @classmethod
    def single(cls, settings: Settings, backend: Backend) -> Gateway:
        """One given backend (tests, and callers that build their own)."""
        config = config_from_settings(settings)
        spec = replace(config.backends[0], id=backend.id, kind=backend.kind)
        config = replace(config, backends=(spec,))
        limiter = ProcessLimiter(
            settings.max_concurrent, settings.max_queue, settings.queue_timeout_s
        )
        return cls(settings, config, [Node(spec, backend, limiter)])

    def node(self, backend_id: str) -> Node:
        return self._by_id[backend_id]

    @property
    def primary(self) -> Node:
        return self.nodes[0]

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, tg: TaskGroup) -> None:
        for node in self.nodes:
            await node.backend.start(tg)
            tg.start_soon(node.backend.warm_up)
        # A backend that is not logged in says so in the log, with its login command.
        tg.start_soon(watch_logins, self)

    async def stop(self) -> None:
        with anyio.CancelScope(shield=True):
            for node in self.nodes:
                try:
                    await node.backend.stop()
                except Exception:  # one backend's failure must not keep the others running
                    logger.exception("stopping backend {} failed", node.id)

    # -- models ---------------------------------------------------------------------------

    async def catalogs(self) -> dict[str, list[ModelInfo]]:
        found: dict[str, list[ModelInfo]] = {}

        async def one(node: Node) -> None:
            found[node.id] = await node.backend.list_models()

        async with anyio.create_task_group() as tg:
            for node in self.nodes:
                tg.start_soon(one, node)
        return {node.id: found[node.id] for node in self.nodes}

    @property
    def default_model(self) -> str:
        """The model a request without one gets: DEFAULT_MODEL, else the first backend's."""
        if self.settings.default_model and len(self.nodes) > 1:
            return self.settings.default_model
        return self.primary.backend.default_model

    async def list_models(self) -> list[ListedModel]:
        catalogs = await self.catalogs()
        if len(self.nodes) == 1 and not self.config.aliases:
            # One backend: its own ids are the whole story.
            node = self.primary
            return [ListedModel(m.id, m.owned_by, Target(node.id, m.id)) for m in catalogs[node.id]]
        return list_models(catalogs, self.config.aliases, self.default_model)

    async def route(self, requested: str) -> Routed:
        catalogs = await self.catalogs()
        listed = None
        if len(self.nodes) == 1 and not self.config.aliases:
            listed = [m.id for m in catalogs[self.primary.id]]
        accepts = {node.id: node.backend.accepts_model for node in self.nodes}
        target = resolve_model(requested, catalogs, self.config.aliases, listed, accepts)
        node = self._by_id.get(target.backend_id)
        if node is None:  # cannot happen: the file's aliases are checked at start-up
            raise ProxyError("model_not_found", f"No backend {target.backend_id!r}.")
        return Routed(node, target.model, requested)

    # -- health ---------------------------------------------------------------------------

    def health(self) -> Mapping[str, BackendHealth]:
        return {node.id: node.backend.health() for node in self.nodes}
