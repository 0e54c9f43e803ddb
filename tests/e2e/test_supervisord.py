"""supervisord runs the server from the repo's own supervisord.conf: the server answers,
comes back after a SIGKILL, and ``supervisorctl stop`` leaves no CLI process and no
temp dir behind, even with a request in flight.

The config is %(here)s-relative, so the test puts the unchanged file into a temp
"checkout" whose .venv is the running one (a symlink): socket, pidfile and logs are the
test's own, and the test shows the file holds no path of one machine. Settings reach
the server through supervisord's environment, which supervisord passes to the program.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import FAKE_CLI_ENV, FAKES, ROOT, free_port, pid_alive, wait_until

PROGRAM = "copilot-cli-proxy"


@dataclass
class Supervised:
    checkout: Path
    process: subprocess.Popen[bytes]
    url: str
    pid_dir: Path
    temp_base: Path

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.checkout / ".venv" / "bin" / "supervisorctl"), "-c", self.conf, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    @property
    def conf(self) -> str:
        return str(self.checkout / "supervisord.conf")

    def server_pid(self) -> int | None:
        out = self.ctl("pid", PROGRAM).stdout.strip()
        return int(out) if out.isdigit() and int(out) > 0 else None

    def state(self) -> str:
        fields = self.ctl("status", PROGRAM).stdout.split()
        return fields[1] if len(fields) > 1 else ""

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def cli_pids(self) -> list[int]:
        return [int(p.name) for p in self.pid_dir.iterdir() if pid_alive(int(p.name))]

    def request_dirs(self) -> list[Path]:
        return sorted(self.temp_base.glob("req-*")) if self.temp_base.exists() else []

    def log(self) -> str:
        parts = []
        for name in ("supervisord.log", "server-console.log"):
            path = self.checkout / "logs" / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)


@pytest.fixture(params=["oneshot", "persistent"])
def supervised(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Supervised]:
    checkout = tmp_path / "checkout"
    (checkout / "logs").mkdir(parents=True)
    shutil.copy(ROOT / "supervisord.conf", checkout / "supervisord.conf")
    (checkout / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    temp_base = tmp_path / "requests"
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SERVICE": "copilot",
        "RUNNER": str(request.param),
        "COPILOT_CLI_PATH": str(FAKES / "copilot"),
        "TEMP_DIR_BASE": str(temp_base),
        "FAKE_CLI_PID_DIR": str(pid_dir),
        "CLI_ENV": FAKE_CLI_ENV,
        "REQUEST_TIMEOUT": "60000",
        "LOG_LEVEL": "DEBUG",
    }
    with (tmp_path / "supervisord.out").open("wb") as out:
        process = subprocess.Popen(
            [str(checkout / ".venv" / "bin" / "supervisord"), "-n", "-c", "supervisord.conf"],
            cwd=checkout,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    supervised = Supervised(checkout, process, f"http://127.0.0.1:{port}", pid_dir, temp_base)
    try:
        yield supervised
    finally:
        supervised.ctl("shutdown")
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        for pid in supervised.cli_pids():  # never leave a stray fake after a failed test
            os.kill(pid, signal.SIGKILL)


def test_supervisord_restarts_a_killed_server_and_stops_it_cleanly(
    supervised: Supervised,
) -> None:
    assert wait_until(supervised.healthy, 30), supervised.log()
    assert wait_until(lambda: supervised.state() == "RUNNING", 10), supervised.log()
    first = supervised.server_pid()
    assert first is not None

    # A crash: supervisord starts a new server, which answers again.
    os.kill(first, signal.SIGKILL)

    def restarted() -> bool:
        pid = supervised.server_pid()
        return pid is not None and pid != first and supervised.healthy()

    assert wait_until(restarted, 30, 0.2), supervised.log()
    second = supervised.server_pid()
    assert second is not None
    assert not pid_alive(first)
    assert "terminated by SIGKILL" in supervised.log()

    # A slow answer is in flight when the operator stops the server.
    outcome: dict[str, object] = {}

    def slow_request() -> None:
        body = {
            "model": "gpt-5-mini",
            "messages": [{"role": "user", "content": "FAKE_SLEEP=30\nslow"}],
        }
        try:
            response = httpx.post(supervised.url + "/v1/chat/completions", json=body, timeout=60)
            outcome["status"] = response.status_code
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    client = threading.Thread(target=slow_request)
    client.start()
    in_flight = lambda: bool(supervised.request_dirs() and supervised.cli_pids())  # noqa: E731
    assert wait_until(in_flight, 20), supervised.log()

    stopped = supervised.ctl("stop", PROGRAM)
    assert "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    # `stop` returns once the server is gone: by then its cleanup must be complete.
    assert not pid_alive(second)
    assert supervised.cli_pids() == [], supervised.log()
    assert supervised.request_dirs() == [], supervised.log()
    assert supervised.state() == "STOPPED"
    client.join(15)
    assert not client.is_alive()
    assert outcome, "the client got an answer or a closed connection"
