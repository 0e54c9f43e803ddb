from __future__ import annotations

import json

from copilot_cli_proxy.ops.checks import Check, Status
from copilot_cli_proxy.ops.doctor import failed, render, render_json

CHECKS = [
    Check("config", Status.OK, "SERVICE=copilot"),
    Check("copilot login", Status.FAIL, "not logged in", "copilot-cli-proxy login copilot"),
    Check("claude models", Status.WARN, "discovery failed", "see the log"),
    Check("port", Status.OK, "127.0.0.1:3456 is free", "never shown for ok"),
]


def test_one_line_per_check_aligned_with_hints_under_problems() -> None:
    lines = render(CHECKS).splitlines()
    assert lines[0].startswith("copilot-cli-proxy ") and lines[0].endswith(" doctor")
    assert lines[2:8] == [
        "  ok    config         SERVICE=copilot",
        "  FAIL  copilot login  not logged in",
        "                       → copilot-cli-proxy login copilot",
        "  warn  claude models  discovery failed",
        "                       → see the log",
        "  ok    port           127.0.0.1:3456 is free",
    ]
    assert lines[-1] == "1 problem to fix before the server can answer chat requests (1 warning)."


def test_summary_when_nothing_failed() -> None:
    assert render(CHECKS[:1]).splitlines()[-1] == "Ready."
    assert render([CHECKS[0], CHECKS[2]]).splitlines()[-1] == "Ready. 1 warning."
    assert not failed([CHECKS[0], CHECKS[2]])
    assert failed(CHECKS)


def test_json_has_every_check_and_the_verdict() -> None:
    data = json.loads(render_json(CHECKS))
    assert data["ok"] is False
    assert [c["status"] for c in data["checks"]] == ["ok", "fail", "warn", "ok"]
    assert data["checks"][1] == {
        "name": "copilot login",
        "status": "fail",
        "detail": "not logged in",
        "hint": "copilot-cli-proxy login copilot",
    }
