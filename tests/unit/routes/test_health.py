"""GET /health says ``degraded``, and why, whenever a backend is known not to answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from copilot_cli_proxy.app import create_app
from copilot_cli_proxy.backends.copilot_cli import CopilotCliBackend
from copilot_cli_proxy.core.backend import BackendHealth, CliStatus
from tests.unit.scripted import ScriptedBackend, client, scripted_settings


async def health_of(tmp_path: Path, **state: Any) -> dict[str, Any]:
    settings = scripted_settings(tmp_path)
    backend = ScriptedBackend(settings)
    for name, value in state.items():
        setattr(backend, name, value)
    app = create_app(settings, backend)
    async with client(app) as http:
        response = await http.get("/health")
    assert response.status_code == 200  # the server is up: degraded is not down
    body: dict[str, Any] = response.json()
    return body


async def test_a_healthy_backend_is_ok_with_no_problems(tmp_path: Path) -> None:
    body = await health_of(tmp_path)
    assert (body["status"], body["problems"]) == ("ok", [])
    assert body["backends"][0]["state"] == "ok"
    assert "cli" not in body, "a backend without a CLI shows no CLI"


async def test_problems_the_backend_reports_make_it_degraded(tmp_path: Path) -> None:
    body = await health_of(tmp_path, reported=["background task failed: OSError(28)"])
    assert body["status"] == "degraded"
    assert body["problems"] == ["background task failed: OSError(28)"]
    assert body["backends"][0]["state"] == "degraded"


@pytest.mark.parametrize("logged_in", [True, None])
async def test_logged_in_or_unknown_is_no_problem(tmp_path: Path, logged_in: bool | None) -> None:
    assert (await health_of(tmp_path, logged_in=logged_in))["status"] == "ok"


async def test_a_cli_that_is_not_executable_makes_it_down(tmp_path: Path) -> None:
    cli = tmp_path / "copilot"
    cli.write_text("#!/bin/sh\n")
    cli.chmod(0o644)
    settings = scripted_settings(tmp_path, copilot_cli_path=str(cli))
    async with client(create_app(settings, CopilotCliBackend(settings))) as http:
        body = (await http.get("/health")).json()
    assert body["status"] == "degraded"
    assert body["cli"]["executable"] is False
    assert body["problems"] == [f"the copilot CLI at {cli} is not executable"]
    assert body["backends"][0]["state"] == "down"


FOUND = CliStatus(path="/x/claude", found=True, executable=True)


@pytest.mark.parametrize(
    ("facts", "state", "problems"),
    [
        ({"cli": CliStatus(None, False, False)}, "down", ["the b CLI was not found"]),
        (
            {"cli": CliStatus(None, False, False), "logged_in": False, "problems": ["x"]},
            "down",
            ["the b CLI was not found"],  # the root cause only
        ),
        ({"cli": CliStatus("/c", True, False)}, "down", ["the b CLI at /c is not executable"]),
        ({"cli": FOUND, "problems": []}, "ok", []),
        ({"cli": FOUND, "problems": ["a", "", " ", "a", "b"]}, "degraded", ["a", "b"]),
        ({"cli": FOUND, "logged_in": False}, "degraded", ["the b CLI is not logged in"]),
        # Its own words about the login replace the generic sentence.
        (
            {"cli": FOUND, "logged_in": False, "problems": ["log in with: x login"]},
            "degraded",
            ["log in with: x login"],
        ),
        # Without a CLI, a backend names its own login problem.
        ({"logged_in": False, "problems": ["T is not set"]}, "degraded", ["T is not set"]),
        ({"logged_in": False}, "ok", []),
        ({"starting": True}, "starting", []),
        ({"starting": True, "problems": ["p"]}, "degraded", ["p"]),
    ],
)
def test_judged_health(facts: dict[str, Any], state: str, problems: list[str]) -> None:
    health = BackendHealth.judged("b", **facts)
    assert (health.state, list(health.problems)) == (state, problems)


def test_health_as_json_has_the_cli_only_when_there_is_one() -> None:
    with_cli = BackendHealth.judged("b", cli=FOUND, details={"runner": "oneshot"}).as_json()
    assert with_cli["cli"] == {
        "path": "/x/claude",
        "found": True,
        "executable": True,
        "version": None,
    }
    assert with_cli["runner"] == "oneshot"
    assert "cli" not in BackendHealth.judged("b").as_json()
