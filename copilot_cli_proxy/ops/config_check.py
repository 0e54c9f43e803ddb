"""Settings for the operator commands: every problem reported, never a dead end.

``serve`` stops at the first bad value (``Settings.from_env``). ``doctor`` wants to
list them all and still check the rest, and ``login`` must work while, say, PORT is
wrong, so here a variable that fails is reported and left out, and the others apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from copilot_cli_proxy.settings import FIELDS, Settings, SettingsError


@dataclass(frozen=True, slots=True)
class ConfigReport:
    settings: Settings
    problems: tuple[str, ...]
    dropped: frozenset[str] = frozenset()  # variables left out (their defaults apply)


def _named_variable(message: str, env: Mapping[str, str]) -> str | None:
    """The variable a ``SettingsError`` names: its message starts with ``NAME:`` or ``NAME=``."""
    for spec in FIELDS:
        if spec.env in env and message.startswith((spec.env + ":", spec.env + "=")):
            return spec.env
    return None


def read_settings(env: Mapping[str, str]) -> ConfigReport:
    remaining = dict(env)
    problems: list[str] = []
    dropped: set[str] = set()
    for _ in range(len(FIELDS) + 1):
        try:
            settings = Settings.from_env(remaining)
            return ConfigReport(settings, tuple(problems), frozenset(dropped))
        except SettingsError as exc:
            problems.append(str(exc))
            name = _named_variable(str(exc), remaining)
            if name is None:
                break
            del remaining[name]  # its default applies from here on
            dropped.add(name)
    return ConfigReport(Settings(), tuple(problems), frozenset(spec.env for spec in FIELDS))
