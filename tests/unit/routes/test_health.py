"""GET /health says ``degraded``, and why, whenever the backend is known not to answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from copilot_cli_proxy.app import create_app
from copilot_cli_proxy.routes.health import health_problems
from tests.unit.scripted import ScriptedBackend, client, scripted_settings


class ReportingBackend(ScriptedBackend):
    """The scripted backend with a health dict the test chooses."""

    def __init__(self, *args: Any, extra: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extra = extra

    def health(self) -> dict[str, Any]:
        return {**super().health(), **self.extra}


async def health_of(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    settings = scripted_settings(tmp_path)
    app = create_app(settings, ReportingBackend(settings, extra=extra))
    async with client(app) as http:
        response = await http.get("/health")
    assert response.status_code == 200  # the server is up: degraded is not down
    body: dict[str, Any] = response.json()
    return body


async def test_a_healthy_backend_is_ok_with_no_problems(tmp_path: Path) -> None:
    body = await health_of(tmp_path)
    assert (body["status"], body["problems"]) == ("ok", [])


async def test_problems_the_backend_reports_make_it_degraded(tmp_path: Path) -> None:
    body = await health_of(tmp_path, problems=["background task failed: OSError(28)"])
    assert body["status"] == "degraded"
    assert body["problems"] == ["background task failed: OSError(28)"]


async def test_not_logged_in_makes_it_degraded(tmp_path: Path) -> None:
    body = await health_of(tmp_path, logged_in=False)
    assert body["status"] == "degraded"
    assert body["problems"] == ["the scripted CLI is not logged in"]


@pytest.mark.parametrize("logged_in", [True, None])
async def test_logged_in_or_unknown_is_no_problem(tmp_path: Path, logged_in: bool | None) -> None:
    assert (await health_of(tmp_path, logged_in=logged_in))["status"] == "ok"


async def test_a_cli_that_is_not_executable_makes_it_degraded(tmp_path: Path) -> None:
    cli = tmp_path / "copilot"
    cli.write_text("#!/bin/sh\n")
    cli.chmod(0o644)
    settings = scripted_settings(tmp_path)
    backend = ScriptedBackend(settings)
    backend.cli_path = str(cli)
    async with client(create_app(settings, backend)) as http:
        body = (await http.get("/health")).json()
    assert body["status"] == "degraded"
    assert body["cli"]["executable"] is False
    assert body["problems"] == [f"the scripted CLI at {cli} is not executable"]


@pytest.mark.parametrize(
    ("status", "problems"),
    [
        ({"backend": "copilot", "cli": {"found": False}}, ["the copilot CLI was not found"]),
        ({"backend": "copilot"}, ["the copilot CLI was not found"]),
        ({"cli": {"found": True, "executable": True}, "problems": []}, []),
        ({"cli": {"found": True}, "problems": ["a", "", " ", 3, "a", "b"]}, ["a", "b"]),
        ({"cli": {"found": True}, "problems": "not a list"}, []),
        (
            {"backend": "claude", "cli": {"found": True}, "logged_in": False, "problems": ["x"]},
            ["the claude CLI is not logged in", "x"],
        ),
        (
            {"backend": "up", "kind": "openai", "logged_in": False, "problems": ["T is not set"]},
            ["T is not set"],
        ),
        ({"backend": "up", "kind": "openai", "logged_in": None, "problems": []}, []),
    ],
)
def test_health_problems(status: dict[str, Any], problems: list[str]) -> None:
    assert health_problems(status) == problems
