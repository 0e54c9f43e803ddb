"""The backends file (``BACKENDS_FILE``): which backends one server runs, and aliases.

```toml
[[backend]]
id = "copilot"            # unique: a-z, 0-9, '-'
kind = "copilot-cli"      # a name from backends/registry.py
runner = "persistent"     # options the kind declares

[aliases]
"gpt-4o" = "copilot/gpt-5-mini"
```

Every mistake stops start-up with the file, the table and the key that are wrong: a
typo in a key is an error, not a silently ignored option.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot_cli_proxy.config.options import OptionSpec, check_option
from copilot_cli_proxy.config.registry import KINDS

BACKEND_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Keys every backend takes, whatever its kind.
COMMON_OPTIONS: dict[str, OptionSpec] = {
    "max_concurrent": OptionSpec(int, minimum=1, maximum=4096),
    "max_queue": OptionSpec(int, minimum=0, maximum=100_000),
    "default_model": OptionSpec(str),
    "env": OptionSpec(list, item=str),
}


class BackendsFileError(ValueError):
    """A mistake in the backends file; the message names the file, table and key."""


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One ``[[backend]]`` table, checked."""

    id: str
    kind: str
    max_concurrent: int | None = None
    max_queue: int | None = None
    default_model: str = ""
    env: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    backends: tuple[BackendSpec, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    source: str = "<settings>"

    def backend(self, backend_id: str) -> BackendSpec:
        for spec in self.backends:
            if spec.id == backend_id:
                return spec
        raise KeyError(backend_id)


def load_backends_file(path: str | Path) -> GatewayConfig:
    source = str(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise BackendsFileError(f"{source}: the backends file does not exist") from None
    except OSError as exc:
        raise BackendsFileError(f"{source}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BackendsFileError(f"{source}: not valid TOML: {exc}") from None
    return parse_backends(data, source)


def parse_backends(data: Mapping[str, Any], source: str) -> GatewayConfig:
    unknown = sorted(set(data) - {"backend", "aliases"})
    if unknown:
        raise BackendsFileError(
            f"{source}: unknown top-level key {unknown[0]!r} (expected [[backend]] and [aliases])"
        )
    tables = data.get("backend")
    if not isinstance(tables, list) or not tables:
        raise BackendsFileError(f"{source}: needs at least one [[backend]] table")
    specs: list[BackendSpec] = []
    for index, table in enumerate(tables):
        where = f"{source}: [[backend]] #{index + 1}"
        if not isinstance(table, dict):
            raise BackendsFileError(f"{where}: must be a table")
        spec = _parse_backend(table, where)
        if any(s.id == spec.id for s in specs):
            raise BackendsFileError(f"{where}: id {spec.id!r} is used by an earlier backend")
        specs.append(spec)
    aliases = _parse_aliases(data.get("aliases", {}), {s.id for s in specs}, source)
    return GatewayConfig(tuple(specs), aliases, source)


def _parse_backend(table: Mapping[str, Any], where: str) -> BackendSpec:
    backend_id = table.get("id")
    if not isinstance(backend_id, str) or not BACKEND_ID.match(backend_id):
        raise BackendsFileError(
            f"{where}: key 'id' must be a string of a-z, 0-9 and '-' (at most 64), "
            f"got {backend_id!r}"
        )
    where = f"{where} (id {backend_id!r})"
    kind = table.get("kind")
    if kind not in KINDS:
        raise BackendsFileError(
            f"{where}: key 'kind' must be one of {', '.join(sorted(KINDS))}, got {kind!r}"
        )
    allowed = {**COMMON_OPTIONS, **KINDS[kind].options}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key in ("id", "kind"):
            continue
        spec = allowed.get(key)
        if spec is None:
            raise BackendsFileError(
                f"{where}: unknown key {key!r} for kind {kind!r} "
                f"(known: {', '.join(sorted(allowed))})"
            )
        try:
            values[key] = check_option(raw, spec)
        except ValueError as exc:
            raise BackendsFileError(f"{where}: key {key!r} {exc}") from None
    for name in values.get("env", ()):
        if not ENV_NAME.match(name):
            raise BackendsFileError(f"{where}: key 'env' holds {name!r}, not a variable name")
    try:
        KINDS[kind].check_options({k: v for k, v in values.items() if k not in COMMON_OPTIONS})
    except ValueError as exc:
        raise BackendsFileError(f"{where}: {exc}") from None
    return BackendSpec(
        id=backend_id,
        kind=kind,
        max_concurrent=values.pop("max_concurrent", None),
        max_queue=values.pop("max_queue", None),
        default_model=values.pop("default_model", ""),
        env=tuple(values.pop("env", ())),
        options=values,
    )


def _parse_aliases(raw: Any, backend_ids: set[str], source: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise BackendsFileError(f'{source}: [aliases] must be a table of name = "backend/model"')
    aliases: dict[str, str] = {}
    for name, target in raw.items():
        where = f"{source}: [aliases] key {name!r}"
        if not isinstance(target, str):
            raise BackendsFileError(f'{where}: must be a string "backend-id/model"')
        backend_id, slash, model = target.partition("/")
        if not slash or not model:
            raise BackendsFileError(
                f'{where}: {target!r} must name a backend and a model: "backend-id/model"'
            )
        if backend_id not in backend_ids:
            raise BackendsFileError(
                f"{where}: {target!r} points to backend {backend_id!r}, which the file does "
                f"not define (backends: {', '.join(sorted(backend_ids))})"
            )
        aliases[name] = target
    return aliases
