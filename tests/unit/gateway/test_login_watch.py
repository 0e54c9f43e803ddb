"""A backend that is not logged in is named in one warning, with its login command."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import anyio
from loguru import logger

from copilot_cli_proxy.gateway.gateway import Gateway
from copilot_cli_proxy.gateway.login_watch import login_changes, watch_logins


def test_a_known_logout_is_reported_once_and_a_login_after_it() -> None:
    assert login_changes({}, {"gh": False, "work": None, "home": True}) == [("gh", False)]
    assert login_changes({"gh": False}, {"gh": False}) == [], "not again while it lasts"
    assert login_changes({"gh": False}, {"gh": True}) == [("gh", True)]
    assert login_changes({}, {"gh": True}) == [], "logged in from the start: nothing to say"
    assert login_changes({"gh": True}, {"gh": False}) == [("gh", False)], "a login expired"


@dataclass(frozen=True)
class Health:
    """The one field of BackendHealth the watch reads."""

    logged_in: bool | None


class StubGateway:
    """The one thing the watch reads: each backend's cheap health()."""

    def __init__(self) -> None:
        self.states: dict[str, Health] = {
            "gh": Health(None),
            "work": Health(True),
        }

    def health(self) -> dict[str, Health]:
        return self.states


async def wait_for(condition: Any, what: str) -> None:
    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.01)
    assert condition(), what


async def test_the_warning_names_the_backend_and_its_login_command() -> None:
    records: list[tuple[str, str]] = []
    sink = logger.add(lambda m: records.append((m.record["level"].name, m.record["message"])))
    gateway = StubGateway()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_logins, cast(Gateway, gateway), 0.01)
            gateway.states["gh"] = Health(False)
            await wait_for(lambda: any(level == "WARNING" for level, _ in records), "a warning")
            gateway.states["gh"] = Health(None)  # unknown for a while: no news
            gateway.states["gh"] = Health(True)
            await wait_for(lambda: any(level == "INFO" for level, _ in records), "logged in")
            tg.cancel_scope.cancel()
    finally:
        logger.remove(sink)
    warnings = [message for level, message in records if level == "WARNING"]
    assert len(warnings) == 1, records
    assert warnings[0].startswith("backend gh is not logged in")
    assert "`copilot-cli-proxy login gh`" in warnings[0]
    assert ("INFO", "backend gh is logged in") in records
    assert not any("work" in message for _, message in records)


async def test_a_failing_health_does_not_end_the_watch() -> None:
    calls = 0

    class Flaky(StubGateway):
        def health(self) -> dict[str, Health]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("boom")
            return {"gh": Health(False)}

    records: list[str] = []
    sink = logger.add(lambda m: records.append(m.record["message"]), level="WARNING")
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_logins, cast(Gateway, Flaky()), 0.01)
            await wait_for(lambda: any("not logged in" in m for m in records), "the warning")
            tg.cancel_scope.cancel()
    finally:
        logger.remove(sink)
    assert records[0] == "reading the backends' login states failed"
