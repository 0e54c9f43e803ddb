"""End-to-end harness: the real server (uvicorn, own process) on a free loopback port,
pointed at fake or real CLIs, driven over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest

from tests.fakes_env import FAKE_CLI_ENV as FAKE_CLI_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
FAKES = ROOT / "tests" / "fakes"
FAKE_CLI_ENV = ",".join(FAKE_CLI_VARIABLES)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes: it holds no resources but its table entry.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class ProxyServer:
    url: str
    process: subprocess.Popen[bytes]
    temp_base: Path
    pid_dir: Path
    log_path: Path
    _clients: list[openai.OpenAI] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def client(self, **kwargs: object) -> openai.OpenAI:
        options: dict[str, object] = {"max_retries": 0, "timeout": 60.0, "api_key": "unused"}
        options.update(kwargs)
        client = openai.OpenAI(base_url=self.base_url, **options)  # type: ignore[arg-type]
        # Closed in stop(): a client left to the garbage collector warns about its open
        # socket in whatever test happens to be running then.
        self._clients.append(client)
        return client

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60.0)

    def request_dirs(self) -> list[Path]:
        return sorted(self.temp_base.glob("req-*")) if self.temp_base.exists() else []

    def cli_pids(self) -> list[int]:
        """Fake CLI processes still alive (each fake writes its pid file at start)."""
        if not self.pid_dir.exists():
            return []
        return [int(p.name) for p in self.pid_dir.iterdir() if pid_alive(int(p.name))]

    def assert_clean(self, timeout: float = 10.0) -> None:
        """No CLI process and no request dir left behind."""
        assert wait_until(lambda: not self.cli_pids() and not self.request_dirs(), timeout), (
            f"left behind: pids={self.cli_pids()} dirs={self.request_dirs()}"
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> list[int]:
        """Stop the server; the CLI processes it left alive (then killed) are returned."""
        while self._clients:
            self._clients.pop().close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        # A child may still be on its way out just after the server ended.
        wait_until(lambda: not self.cli_pids(), 5)
        stray = self.cli_pids()
        for pid in stray:  # never leave a stray fake running after a failed test
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return stray


def start_server(
    tmp_path: Path, env: dict[str, str], *, ready_timeout: float = 60.0
) -> ProxyServer:
    port = free_port()
    temp_base = tmp_path / "requests"
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir(exist_ok=True)
    log_path = tmp_path / "server.log"
    full_env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "TEMP_DIR_BASE": str(temp_base),
        "LOG_DIR": str(tmp_path / "logs"),
        "LOG_LEVEL": "DEBUG",
        "FAKE_CLI_PID_DIR": str(pid_dir),
        # A CLI child gets an allowlist of the environment: name what the fakes read.
        "CLI_ENV": FAKE_CLI_ENV,
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "copilot_cli_proxy"],
            cwd=tmp_path,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ProxyServer(f"http://127.0.0.1:{port}", process, temp_base, pid_dir, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            return httpx.get(server.url + "/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    if not wait_until(ready, ready_timeout, 0.1):
        server.stop()
        raise RuntimeError(f"server did not become ready:\n{server.log()}")
    return server


def fake_env(service: str, **extra: str) -> dict[str, str]:
    env = {
        "SERVICE": service,
        "COPILOT_CLI_PATH": str(FAKES / "copilot"),
        "CLAUDE_CLI_PATH": str(FAKES / "claude"),
        "REQUEST_TIMEOUT": "20000",
        "RUNNER": "oneshot",
        # A login the fake copilot accepts, as an operator's token would be: without one
        # the one-shot backend rightly reports "not logged in" on /health.
        "COPILOT_GITHUB_TOKEN": "github_pat_fake_for_tests",
    }
    env.update(extra)
    return env


def real_cli(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    local = ROOT / "node_modules" / ".bin" / name
    return str(local) if local.exists() else None


def require_real_cli(name: str) -> str:
    """The real CLI from npm; a test without it fails in CI and is skipped elsewhere."""
    path = real_cli(name)
    if path is None:
        message = f"the real {name} CLI is not installed (run scripts/setup.sh --with-clis)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def ask(text: str) -> list[dict[str, str]]:
    """One user message, the shortest conversation a test needs."""
    return [{"role": "user", "content": text}]
