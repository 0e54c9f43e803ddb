"""Which backend answers a model name, and what ``/v1/models`` lists.

A request's ``model`` resolves in this order: an alias from the backends file, then
``backend-id/model``, then a plain id that exactly one backend serves. Pure functions
over the backends' model lists, so every rule is unit-tested without a backend.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from copilot_cli_proxy.core.types import ModelInfo
from copilot_cli_proxy.errors import ProxyError, clip

Catalogs = Mapping[str, Sequence[ModelInfo]]  # backend id → its models, in config order


@dataclass(frozen=True, slots=True)
class Target:
    backend_id: str
    model: str  # the name the backend itself takes

    @property
    def qualified(self) -> str:
        return f"{self.backend_id}/{self.model}"


@dataclass(frozen=True, slots=True)
class ListedModel:
    id: str
    owned_by: str
    target: Target


def _accepts(model: ModelInfo, name: str) -> bool:
    return name == model.id or name in model.aliases


def _holders(name: str, catalogs: Catalogs) -> list[Target]:
    return [
        Target(backend_id, model.id)
        for backend_id, models in catalogs.items()
        for model in models
        if _accepts(model, name)
    ]


def list_models(
    catalogs: Catalogs, aliases: Mapping[str, str], default: str | None = None
) -> list[ListedModel]:
    """Plain ids that one backend serves, every ``backend-id/model``, then aliases.

    The default model, when given and resolvable, comes first.
    """
    counts: dict[str, int] = {}
    for models in catalogs.values():
        for model_id in {m.id for m in models}:
            counts[model_id] = counts.get(model_id, 0) + 1
    plain: list[ListedModel] = []
    qualified: list[ListedModel] = []
    for backend_id, models in catalogs.items():
        for model in models:
            target = Target(backend_id, model.id)
            if counts[model.id] == 1:
                plain.append(ListedModel(model.id, backend_id, target))
            qualified.append(ListedModel(target.qualified, backend_id, target))
    named = [
        ListedModel(name, target.partition("/")[0], Target(*target.split("/", 1)))
        for name, target in aliases.items()
    ]
    listed = _dedupe(plain + qualified + named)
    if default:
        try:
            wanted = resolve_model(default, catalogs, aliases)
        except ProxyError:
            return listed
        first = [m for m in listed if m.id == default] or [m for m in listed if m.target == wanted][
            :1
        ]
        listed = first + [m for m in listed if m not in first]
    return listed


def _dedupe(models: list[ListedModel]) -> list[ListedModel]:
    seen: set[str] = set()
    out = []
    for model in models:
        if model.id not in seen:
            seen.add(model.id)
            out.append(model)
    return out


def resolve_model(
    requested: str,
    catalogs: Catalogs,
    aliases: Mapping[str, str],
    listed: Sequence[str] | None = None,
) -> Target:
    """The backend and model for ``requested``; 400 when ambiguous, 404 when unknown.

    ``listed`` is what a 404 offers instead (default: the merged listing).
    """
    if requested in aliases:
        backend_id, _, model = aliases[requested].partition("/")
        return Target(backend_id, model)
    backend_id, slash, rest = requested.partition("/")
    if slash and backend_id in catalogs:
        served = catalogs[backend_id]
        if any(_accepts(m, rest) for m in served):
            return Target(backend_id, rest)
        raise _not_found(requested, [f"{backend_id}/{m.id}" for m in served])
    holders = _holders(requested, catalogs)
    if len({h.backend_id for h in holders}) == 1:
        return Target(holders[0].backend_id, requested)
    if holders:
        choices = ", ".join(f"{h.backend_id}/{requested}" for h in holders)
        raise ProxyError(
            "ambiguous_model",
            f"The model {clip(requested)!r} is served by several backends. Name one of: {choices}.",
            param="model",
        )
    names = list(listed) if listed is not None else [m.id for m in list_models(catalogs, aliases)]
    raise _not_found(requested, names)


def _not_found(requested: str, names: Sequence[str]) -> ProxyError:
    close = difflib.get_close_matches(requested[:200], names, n=5, cutoff=0.5)
    hint = (
        f" Did you mean: {', '.join(close)}?"
        if close
        else f" Available models: {', '.join(names[:60])}{' …' if len(names) > 60 else ''}."
    )
    return ProxyError(
        "model_not_found",
        f"The model {clip(requested)!r} does not exist or is not served here.{hint}",
        param="model",
    )
